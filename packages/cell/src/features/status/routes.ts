import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { overallState, type SubsystemStatus } from './service.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The VPN's state at the top of the answer, where no one can miss it: `up`, `down` (with the
 * reason), `starting`, `waiting_for_setup` or `off` (wireguard.mode "off").
 */
function vpnSummary(subsystems: Record<string, SubsystemStatus>) {
  const wg = subsystems['wireguard'];
  if (!wg) return { state: 'down', interface: null, reason: 'no WireGuard status' };
  const state = typeof wg['vpn'] === 'string' ? wg['vpn'] : 'down';
  const reason = wg['reason'] ?? wg['error'] ?? null;
  return { state, interface: wg['interface'] ?? null, adopted: wg['adopted'] ?? false, reason };
}

export function statusRoutes(deps: CellDeps): Router {
  const router = new Router();
  // The answer changes at most once a second (the summary is shared for a second, uptime counts
  // seconds): a dashboard polling it gets the same text, serialized once.
  let last: { subsystems: Record<string, SubsystemStatus>; uptime: number; json: string } | undefined;
  router.get('/api/status', requireRole('admin'), async (ctx) => {
    const now = Date.now();
    const subsystems = await deps.status.summary(1000, now);
    const uptime = Math.round((now - deps.startedAt) / 1000);
    if (last?.subsystems !== subsystems || last.uptime !== uptime) {
      const status = overallState(subsystems);
      const vpn = vpnSummary(subsystems);
      const body = { ok: true, status, version: deps.version, uptime_s: uptime, vpn, subsystems };
      last = { subsystems, uptime, json: JSON.stringify(body) };
    }
    ctx.res.setHeader('Content-Type', JSON_TYPE); // directly: `ctx.type =` looks the type up in mime-db on every call
    ctx.body = last.json;
  });
  return router;
}
