import type { CellDeps } from '../../deps.js';
import { HttpError } from '../../http/errors.js';
import { describeError, engineState, objectNames, requireEngine } from '../store/engine.js';
import { serviceHealth, waitHealthy } from '../store/health.js';
import { findInstallation, requireInstalled } from '../store/queries.js';
import { presentJob } from '../store/presenter.js';

export const REPUBLISH_ADVICE =
  'its ports are published on addresses the cell no longer chooses (the tunnel was down at install, or ' +
  'the VPN subnet changed): remove it (its data is kept) and install it again';

/** Where a service stands: installed or not, and each container's state and health. Undefined for an unknown id. */
export async function serviceStatus(deps: CellDeps, id: string): Promise<Record<string, unknown> | undefined> {
  const { store, db } = deps;
  const inst = await findInstallation(db, id);
  if (!inst) {
    const view = await store.catalog.read();
    const known = view.ok && view.services.some((s) => s.entry.id === id);
    if (!known) return undefined;
    return { ok: true, service: id, installed: false, state: 'not_installed', healthy: false, containers: [] };
  }
  if (inst.state !== 'installed') {
    const job = inst.jobId ? await store.installer.job(inst.jobId) : undefined;
    const unhealthy = { healthy: false, containers: [] };
    return {
      ok: true,
      service: id,
      installed: false,
      state: inst.state,
      ...unhealthy,
      job: job ? presentJob(job) : null,
    };
  }
  const installed = { ok: true, service: id, installed: true, state: 'installed', version: inst.version };
  const engine = await engineState(store.runtime);
  if (!engine.reachable)
    return { ...installed, healthy: false, engine: { reachable: false, reason: engine.reason }, containers: [] };
  const containers = await serviceHealth(store.runtime, store.cellId, inst.manifest);
  const containersHealthy = containers.every((c) => c.healthy);
  // healthy: the containers are, and (for a service with accounts) its account contract answers
  let contract: string | null = null;
  if (inst.manifest.accounts) {
    contract = containersHealthy
      ? await deps.services.accounts.contractProblem(inst)
      : 'not asked: a container is not healthy';
  }
  const drift = await store.publishDrift(inst);
  return {
    ...installed,
    healthy: containersHealthy && contract === null,
    containers,
    // null, or where its host ports are published against where the cell would publish them now
    publish: drift ? { ...drift, advice: REPUBLISH_ADVICE } : null,
    ...(inst.manifest.accounts ? { accounts: { answers: contract === null, reason: contract } } : {}),
  };
}

/**
 * Restarts every container of an installed service and waits until it is healthy again: its
 * status then, or 502 restart_failed (404 when it is not installed, 503 without an engine).
 */
export async function restartService(deps: CellDeps, id: string): Promise<Record<string, unknown> | undefined> {
  const { db, store } = deps;
  const inst = await requireInstalled(db, id);
  await requireEngine(store.runtime);
  try {
    const names = objectNames(store.cellId, inst.id);
    for (const c of inst.manifest.containers)
      await store.runtime.restartContainer(names.container(c.name), { timeoutSeconds: 10 });
    await waitHealthy(store.runtime, store.cellId, inst.manifest);
  } catch (err) {
    throw new HttpError(502, 'restart_failed', `restarting ${inst.id} failed: ${describeError(err)}`);
  }
  return serviceStatus(deps, inst.id);
}
