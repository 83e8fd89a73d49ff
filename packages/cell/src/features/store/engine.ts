import { randomBytes } from 'node:crypto';
import type { ContainerInfo, ContainerRuntime, RuntimeErrorCode } from '@pic/runtime';
import type { Db } from '../../db/database.js';
import { readSetting, writeSettingOnce } from '../../db/settings.js';
import { errors } from '../../http/errors.js';

/** The settings row holding this cell's runtime id: the pic.cell label of everything it creates. */
export const CELL_ID_SETTING = 'store.cell_id';

/** A stable id for this cell's containers, made once (12 hex digits: short enough for object names). */
export async function storeCellId(db: Db): Promise<string> {
  const existing = await readSetting<string>(db, CELL_ID_SETTING);
  if (existing) return existing;
  const id = randomBytes(6).toString('hex');
  await writeSettingOnce(db, CELL_ID_SETTING, id);
  // Another start may have raced us to it: whatever is stored now is the id.
  return (await readSetting<string>(db, CELL_ID_SETTING)) ?? id;
}

/**
 * The runtime for the cell's config: store.engine_socket, else DOCKER_HOST, else Docker's default
 * socket. @pic/runtime (and dockerode under it) is loaded on first use, not at start-up: the cell
 * starts as fast without an engine, and a bad socket setting shows up as an unreachable engine
 * with its reason instead of stopping the cell.
 */
export function createRuntime(
  cellId: string,
  socket: string | null,
  env: NodeJS.ProcessEnv = process.env,
): ContainerRuntime {
  const options = { cellId, socket: socket ?? undefined, dockerHost: env['DOCKER_HOST'], pingTimeoutMs: 3000 };
  let real: ContainerRuntime | undefined;
  let loading: Promise<ContainerRuntime> | undefined;
  const load = () =>
    (loading ??= import('@pic/runtime')
      .then((m) => (real = new m.DockerRuntime(options)))
      .catch((err: unknown) => {
        loading = undefined;
        throw err;
      }));
  const given = options.socket?.trim() || options.dockerHost?.trim() || '/var/run/docker.sock';
  const target = {
    cellId,
    get endpoint(): string {
      return real?.endpoint ?? (given.startsWith('/') ? `unix://${given}` : given);
    },
  };
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (prop in t) return Reflect.get(t, prop, receiver);
      // Not a thenable, not inspectable as anything but the target: only the runtime's methods are forwarded.
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      return async (...args: unknown[]) => {
        const rt = (await load()) as unknown as Record<string, (...a: unknown[]) => unknown>;
        const fn = rt[prop];
        if (typeof fn !== 'function') throw new TypeError(`the container runtime has no method ${prop}`);
        return fn.apply(rt, args);
      };
    },
  }) as unknown as ContainerRuntime;
}

export type EngineState =
  | { reachable: true; endpoint: string; version: string }
  | { reachable: false; endpoint: string; reason: string };

export async function engineState(runtime: ContainerRuntime): Promise<EngineState> {
  try {
    await runtime.ping();
    const v = await runtime.version();
    return { reachable: true, endpoint: runtime.endpoint, version: v.version };
  } catch (err) {
    return { reachable: false, endpoint: runtime.endpoint, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** 503 with the engine's own reason when the engine does not answer: the cell itself keeps running. */
export async function requireEngine(runtime: ContainerRuntime): Promise<void> {
  const state = await engineState(runtime);
  if (!state.reachable)
    throw errors.unavailable(
      `the container engine is not reachable, so nothing can be installed or changed: ${state.reason}`,
    );
}

/** Engine objects of one service. The cell id is part of every name: several cells may share an engine. */
export function objectNames(cellId: string, serviceId: string) {
  const base = `pic-${cellId}-${serviceId}`;
  return {
    network: base,
    container: (name: string) => `${base}-${name}`,
    volume: (name: string) => `${base}-${name}`,
  };
}

/** The loopback port the engine published for a container's tcp port: how the cell reaches it. */
export function loopbackPort(info: ContainerInfo, containerPort: number): number | undefined {
  return info.ports.find(
    (p) => p.containerPort === containerPort && p.protocol === 'tcp' && p.hostIp === '127.0.0.1' && p.hostPort > 0,
  )?.hostPort;
}

const RUNTIME_ERROR_CODES: ReadonlySet<string> = new Set<RuntimeErrorCode>([
  'engine_unreachable',
  'engine_error',
  'image_missing',
  'image_digest_mismatch',
  'registry_unreachable',
  'image_pull_failed',
  'name_conflict',
  'not_found',
  'not_owned',
  'invalid_spec',
  'exec_timeout',
]);

/** A @pic/runtime error (by its stable code: the runtime's classes are loaded lazily, see createRuntime). */
export function isRuntimeError(err: unknown, code?: RuntimeErrorCode): err is Error & { code: RuntimeErrorCode } {
  const c = (err as { code?: unknown } | null)?.code;
  return (
    err instanceof Error && typeof c === 'string' && RUNTIME_ERROR_CODES.has(c) && (code === undefined || c === code)
  );
}

export const describeError = (err: unknown): string => (err instanceof Error ? err.message : String(err));
