import { InvalidSpecError } from './errors.js';

/** Where the engine listens: a unix socket (Docker, Podman) or a plain-HTTP TCP address. */
export type EngineEndpoint = { kind: 'unix'; socketPath: string } | { kind: 'tcp'; host: string; port: number };

/** Docker's own default, used when neither an explicit socket nor DOCKER_HOST is given. */
export const DEFAULT_SOCKET = '/var/run/docker.sock';

export interface EndpointSource {
  /** An explicit socket path or `unix://` URL (the cell's `runtime.socket`); wins over DOCKER_HOST. */
  socket?: string | undefined;
  /** A DOCKER_HOST value: `unix:///run/pic-docker.sock`, `/path/to.sock` or `tcp://127.0.0.1:2375`. */
  dockerHost?: string | undefined;
}

/**
 * Picks the engine endpoint: explicit socket, then DOCKER_HOST, then Docker's default socket.
 * TLS (`DOCKER_TLS_VERIFY`) and ssh:// are not supported: the cell talks to a local engine.
 */
export function resolveEndpoint(source: EndpointSource = {}): EngineEndpoint {
  const value = source.socket?.trim() || source.dockerHost?.trim() || DEFAULT_SOCKET;
  return parseEndpoint(value);
}

export function parseEndpoint(value: string): EngineEndpoint {
  if (value.startsWith('/')) return { kind: 'unix', socketPath: value };
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new InvalidSpecError(`engine socket must be an absolute path: ${value}`);
    return { kind: 'unix', socketPath };
  }
  if (value.startsWith('tcp://') || value.startsWith('http://')) {
    const url = new URL(value.replace(/^tcp:/, 'http:'));
    const port = url.port ? Number(url.port) : 2375;
    return { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port };
  }
  throw new InvalidSpecError(
    `unsupported engine address ${JSON.stringify(value)}: use a socket path, unix:// or tcp://`,
  );
}

/** The endpoint as a DOCKER_HOST-style string, used in every error message. */
export function describeEndpoint(endpoint: EngineEndpoint): string {
  return endpoint.kind === 'unix' ? `unix://${endpoint.socketPath}` : `tcp://${endpoint.host}:${endpoint.port}`;
}
