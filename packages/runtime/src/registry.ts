import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { findExecutable } from './executable.js';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A real image registry as a plain process: Debian's `docker-registry` (the distribution registry,
 * `docker-registry serve <config>`), listening on 127.0.0.1 only. The tests push to it and the cell
 * pulls from it by digest; `npm run services:local` keeps one under the data directory. Docker
 * treats registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so no engine setting is needed.
 */
export interface RegistryProcess {
  /** `127.0.0.1:<port>`: the registry part of an image reference. */
  host: string;
  port: number;
  /** The registry's storage root (blobs, repositories). */
  storageDir: string;
  pid: number;
  /** Stops the process (SIGTERM, then SIGKILL); removes a temporary storage dir. Idempotent. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Keep blobs here (created if missing); a temporary directory, removed at stop(), when omitted. */
  storageDir?: string;
  /** A fixed port; a free one when omitted. */
  port?: number;
  /** Where the registry's own log goes; next to the config when omitted. */
  logFile?: string;
  /** Outlive this process (npm run services:local); stop() still ends it. */
  detached?: boolean;
  startTimeoutMs?: number;
}

export type RegistryStart = RegistryProcess | { skip: string };

/** The docker-registry binary, if installed (scripts/system/registry.mjs installs it on `npm test`). */
export function findRegistryBinary(): string | undefined {
  return findExecutable('docker-registry');
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a registry and waits until `GET /v2/` answers 200; `{ skip }` with the reason when it cannot. */
export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryStart> {
  const binary = findRegistryBinary();
  if (!binary)
    return {
      skip: "docker-registry is not installed (scripts/system/registry.mjs installs Debian's docker-registry on `npm test`)",
    };
  const temporary = options.storageDir === undefined;
  const storageDir = options.storageDir ?? mkdtempSync(join(tmpdir(), 'pic-registry-'));
  mkdirSync(storageDir, { recursive: true, mode: 0o700 });
  const attempts = options.port === undefined ? 3 : 1;
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const port = options.port ?? (await freePort());
    const started = await startOnce(binary, storageDir, port, options);
    if ('pid' in started) {
      let stopping: Promise<void> | undefined;
      return {
        ...started,
        stop: () =>
          (stopping ??= (async () => {
            await terminate(started.child, started.pid);
            if (temporary) rmSync(storageDir, { recursive: true, force: true });
          })()),
      };
    }
    last = started.failure;
  }
  if (temporary) rmSync(storageDir, { recursive: true, force: true });
  return { skip: `docker-registry did not start: ${last}` };
}

async function startOnce(
  binary: string,
  storageDir: string,
  port: number,
  options: RegistryOptions,
): Promise<(Omit<RegistryProcess, 'stop'> & { child: ChildProcess }) | { failure: string }> {
  const configDir = join(storageDir, 'config');
  mkdirSync(configDir, { recursive: true });
  const configFile = join(configDir, 'config.yml');
  // No auth, loopback only, deletes allowed (tests replace content); the blobs live under data/.
  writeFileSync(
    configFile,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(join(storageDir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const logFile = options.logFile ?? join(configDir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(binary, ['serve', configFile], {
    stdio: ['ignore', fd, fd],
    detached: options.detached ?? false,
  });
  closeSync(fd);
  if (options.detached) child.unref();
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.once('error', (err) => (exited = `could not be spawned: ${err.message}`));
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (exited) return { failure: `${exited}; log tail (${logFile}):\n${tail(logFile)}` };
    if ((await v2Status(`127.0.0.1:${port}`)) === 200) {
      return { host: `127.0.0.1:${port}`, port, storageDir, pid: child.pid!, child };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  return { failure: `no answer on 127.0.0.1:${port}/v2/ in time; log tail:\n${tail(logFile)}` };
}

/** The status of `GET http://<host>/v2/` (the registry API's base), or 0 when nothing answers. */
export function v2Status(host: string, timeoutMs = 1000): Promise<number> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve) => {
    const req = request(
      { host: hostname, port: Number(port), path: '/v2/', method: 'GET', timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function terminate(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
  if (!killed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await exited;
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Where the registry keeps a blob (manifests are blobs too), under its storage root. */
export function registryBlobPath(storageDir: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError(`"${digest}" is not a sha256 digest`);
  return join(storageDir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
