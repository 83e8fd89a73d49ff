import type Docker from 'dockerode';
import {
  EngineError,
  EngineUnreachableError,
  ImagePullError,
  RegistryUnreachableError,
  type RuntimeError,
} from './errors.js';
import type { PullProgress } from './types.js';

// Pulling by digest and pushing, for DockerRuntime: references, the engine's progress stream, and
// what a failed pull means.

/** One line of an engine pull/push stream. */
export interface StreamEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: unknown;
  error?: string;
  errorDetail?: { message?: string };
}

/** `registry/repository@sha256:…` split up; undefined for anything else (no registry, a tag, no digest). */
export function splitDigestReference(
  ref: string,
): { registry: string; repository: string; digest: string } | undefined {
  const m = /^([^@\s]+)@(sha256:[0-9a-f]{64})$/.exec(ref);
  if (!m) return undefined;
  const repository = m[1]!;
  const first = repository.split('/')[0]!;
  // Docker's rule: the first component names a registry when it has a dot or a port, or is localhost.
  if (!repository.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost'))
    return undefined;
  if (/:[^/]*$/.test(repository.slice(first.length))) return undefined; // a tag as well: pass the digest alone
  return { registry: first, repository, digest: m[2]! };
}

const UNREACHABLE_REGISTRY = new RegExp(
  [
    'dial tcp',
    'connection refused',
    'no such host',
    'i/o timeout',
    'network is unreachable',
    'no route to host',
    'server gave HTTP response to HTTPS client',
    'TLS handshake',
    'x509',
    'certificate',
    'connection reset',
    'EOF$',
  ].join('|'),
  'i',
);
const NOT_IN_REGISTRY = /manifest unknown|not found|name unknown|blob unknown/i;
const NOT_VERIFIED = /verif|did not match|digest mismatch|unexpected digest/i;

/** Sorts an engine's pull failure into the registry being away, the image being absent, or bad content. */
export function pullError(ref: string, registry: string, err: unknown): RuntimeError {
  if (err instanceof EngineUnreachableError) return err;
  const message =
    err instanceof EngineError
      ? err.message.replace(/^pull image: engine answered \d+: /, '')
      : err instanceof Error
        ? err.message
        : String(err);
  if (UNREACHABLE_REGISTRY.test(message)) return new RegistryUnreachableError(ref, registry, message, err);
  if (NOT_VERIFIED.test(message))
    return new ImagePullError(ref, 'verification_failed', `what the registry served does not verify: ${message}`, err);
  if (NOT_IN_REGISTRY.test(message))
    return new ImagePullError(ref, 'not_found', `the registry has no such image: ${message}`, err);
  return new ImagePullError(ref, 'failed', message, err);
}

/** Turns engine pull events into layer and byte counts. */
export class PullTracker {
  private readonly layers = new Map<string, { current: number; total: number; done: boolean }>();
  private lastStatus = '';

  constructor(private readonly onProgress: ((p: PullProgress) => void) | undefined) {}

  event(e: StreamEvent): void {
    const status = e.status ?? '';
    // Layer lines carry a 12-hex short id; the first line's id is the reference itself.
    if (e.id && /^[0-9a-f]{12}$/.test(e.id)) {
      const layer = this.layers.get(e.id) ?? { current: 0, total: 0, done: false };
      this.layers.set(e.id, layer);
      if (status === 'Downloading' && e.progressDetail) {
        layer.current = e.progressDetail.current ?? layer.current;
        layer.total = e.progressDetail.total ?? layer.total;
      } else if (status === 'Download complete' || status === 'Verifying Checksum') {
        layer.current = layer.total;
      } else if (status === 'Pull complete' || status === 'Already exists') {
        layer.current = layer.total;
        layer.done = true;
      }
    }
    this.lastStatus =
      e.id && !/^[0-9a-f]{12}$/.test(e.id) ? status : status ? `${status}${e.id ? ` ${e.id}` : ''}` : this.lastStatus;
    if (!this.onProgress) return;
    let bytesDone = 0;
    let bytesTotal = 0;
    let layersDone = 0;
    for (const l of this.layers.values()) {
      bytesDone += l.current;
      bytesTotal += l.total;
      if (l.done) layersDone++;
    }
    this.onProgress({ layers: this.layers.size, layersDone, bytesDone, bytesTotal, status: this.lastStatus });
  }
}

/** Reads an engine progress stream (JSON lines) to its end; an `error` line or the deadline rejects. */
export function followStream(
  docker: Docker,
  stream: unknown,
  deadline: number,
  endpoint: string,
  onEvent: (e: StreamEvent) => void,
): Promise<void> {
  const input = stream as NodeJS.ReadableStream & { destroy?: () => void };
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        input.destroy?.();
        reject(new EngineUnreachableError(endpoint, 'the engine did not finish the transfer in time'));
      },
      Math.max(1, deadline - Date.now()),
    );
    // An error line does not end the stream with an error: docker-modem hands it over as an event.
    let failed: string | undefined;
    docker.modem.followProgress(
      input,
      (err: Error | null) => {
        clearTimeout(timer);
        if (err) reject(err);
        else if (failed !== undefined) reject(new EngineError(failed, undefined));
        else resolve();
      },
      (event: StreamEvent) => {
        const message = event.errorDetail?.message ?? event.error;
        if (message !== undefined) failed ??= message;
        else onEvent(event);
      },
    );
  });
}
