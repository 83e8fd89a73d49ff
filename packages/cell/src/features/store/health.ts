import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerSpec as ManifestContainer, ServiceManifest } from '@pic/manifest';
import type { ContainerInfo, ContainerRuntime } from '@pic/runtime';
import { describeError, isRuntimeError, loopbackPort, objectNames } from './engine.js';
import { healthDeadlineMs } from './specs.js';

export interface ContainerHealth {
  /** The manifest's container name. */
  name: string;
  /** The engine's name for it. */
  engine_name: string;
  exists: boolean;
  state: string;
  running: boolean;
  healthy: boolean;
  /** Why it is not healthy, when it is not. */
  reason?: string;
  started_at?: string | null;
  image_digest?: string;
}

/** One look at one container: the engine's state, and its health check (exec: the engine's verdict; http: a GET from the cell). */
export async function probeContainer(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
  c: ManifestContainer,
): Promise<ContainerHealth> {
  const engineName = objectNames(cellId, manifest.id).container(c.name);
  let info: ContainerInfo;
  try {
    info = await runtime.inspectContainer(engineName);
  } catch (err) {
    if (isRuntimeError(err, 'not_found'))
      return {
        name: c.name,
        engine_name: engineName,
        exists: false,
        state: 'missing',
        running: false,
        healthy: false,
        reason: 'the container does not exist',
      };
    throw err;
  }
  const base = {
    name: c.name,
    engine_name: engineName,
    exists: true,
    state: info.state,
    running: info.running,
    started_at: info.startedAt ?? null,
    image_digest: info.imageDigest,
  };
  if (!info.running) {
    return {
      ...base,
      healthy: false,
      reason: `the container is ${info.state}${info.exitCode !== undefined ? ` (exit code ${info.exitCode})` : ''}`,
    };
  }
  const hc = c.healthcheck;
  if (hc.http) {
    const port = loopbackPort(info, hc.http.port);
    if (!port) return { ...base, healthy: false, reason: `port ${hc.http.port}/tcp is not published on 127.0.0.1` };
    try {
      const timeoutMs = hc.timeoutSeconds * 1000;
      const status = hc.http.tls
        ? await httpsStatus(port, hc.http.path, timeoutMs)
        : await fetch(`http://127.0.0.1:${port}${hc.http.path}`, {
            signal: AbortSignal.timeout(timeoutMs),
            redirect: 'manual',
          }).then(async (res) => {
            await res.arrayBuffer().catch(() => undefined);
            return res.status;
          });
      if (status >= 200 && status < 300) return { ...base, healthy: true };
      return { ...base, healthy: false, reason: `GET ${hc.http.path} answered ${status}` };
    } catch (err) {
      return { ...base, healthy: false, reason: `GET ${hc.http.path} failed: ${describeError(err)}` };
    }
  }
  if (info.health === 'healthy') return { ...base, healthy: true };
  return { ...base, healthy: false, reason: `health check ${info.health ?? 'not reported'}` };
}

/**
 * GET over TLS on loopback, the certificate not checked: a liveness probe of a port the container
 * serves with the cell's own certificate (issued for a name, not for 127.0.0.1).
 */
function httpsStatus(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, method: 'GET', rejectUnauthorized: false, timeout: timeoutMs };
    const req = httpsRequest(options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function serviceHealth(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
): Promise<ContainerHealth[]> {
  return Promise.all(manifest.containers.map((c) => probeContainer(runtime, cellId, manifest, c)));
}

/**
 * Waits until every container passes its health check, within the time its own check settings
 * allow. Fails at once when a container stops running, or when an exec check says unhealthy.
 * Throws an Error naming the container and the reason.
 */
export async function waitHealthy(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
  pollMs = 250,
): Promise<void> {
  await Promise.all(
    manifest.containers.map(async (c) => {
      const deadline = Date.now() + healthDeadlineMs(c);
      let last: ContainerHealth | undefined;
      for (;;) {
        last = await probeContainer(runtime, cellId, manifest, c);
        if (last.healthy) return;
        if (last.exists && !last.running && last.state !== 'created' && last.state !== 'restarting') {
          throw new Error(`container "${c.name}" stopped while starting: ${last.reason}`);
        }
        if (last.reason === 'health check unhealthy') throw new Error(`container "${c.name}" is unhealthy`);
        if (Date.now() > deadline)
          throw new Error(
            `container "${c.name}" did not become healthy in ${Math.round(healthDeadlineMs(c) / 1000)} s: ${last.reason}`,
          );
        await sleep(pollMs);
      }
    }),
  );
}
