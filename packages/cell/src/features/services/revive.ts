import type { ContainerRuntime } from '@pic/runtime';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditLog } from '../audit/service.js';
import { describeError, engineState, objectNames } from '../store/engine.js';
import { listInstallations } from '../store/queries.js';

export interface ReviveDeps {
  db: Kysely<Database>;
  runtime: ContainerRuntime;
  cellId: string;
  logger: Logger;
  audit: AuditLog;
}

export interface ReviveReport {
  /** Containers that were not running and were started. */
  started: string[];
  /** Containers that could not be started, with the engine's reason. */
  failed: Array<{ container: string; error: string }>;
}

/**
 * Starts every installed service's containers that are not running. Called once the tunnel is up.
 *
 * Why: services publish their ports on the cell's WireGuard address, which exists only once the
 * cell has brought the interface up. After a reboot the engine starts its `unless-stopped`
 * containers first, cannot bind that address, and does not try again; without this, every
 * service stays down until the admin restarts it by hand. Nothing installed: the engine is left alone.
 */
export async function reviveInstalledServices(d: ReviveDeps): Promise<ReviveReport> {
  const report: ReviveReport = { started: [], failed: [] };
  const installed = (await listInstallations(d.db)).filter((i) => i.state === 'installed');
  if (installed.length === 0) return report;
  const engine = await engineState(d.runtime);
  if (!engine.reachable) {
    d.logger.warn('container engine not reachable; installed services not checked', { endpoint: engine.endpoint });
    return report;
  }
  for (const inst of installed) {
    const names = objectNames(d.cellId, inst.id);
    for (const c of inst.manifest.containers) {
      const container = names.container(c.name);
      try {
        const info = await d.runtime.inspectContainer(container);
        if (info.running) continue;
        await d.runtime.startContainer(container);
        report.started.push(container);
      } catch (err) {
        report.failed.push({ container, error: describeError(err) });
      }
    }
  }
  if (report.started.length || report.failed.length) {
    d.logger[report.failed.length ? 'warn' : 'info']('installed services revived', { ...report });
    await d.audit.append({
      actor: 'system',
      action: 'services.revive',
      targetType: 'service',
      targetId: installed.map((i) => i.id).join(','),
      result: report.failed.length ? 'error' : 'ok',
      details: { started: report.started, failed: report.failed },
    });
  }
  return report;
}
