import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateQuery } from '../../http/validate.js';
import { errors } from '../../http/errors.js';
import { ntpStatus } from './ntp.js';
import { reachCheck, resolveCheck } from './service.js';
import { peerNamesByKey } from '../peers/queries.js';
import { ReachQuery, ResolveQuery, checkReach, checkResolve } from './schema.js';

export function ntpRoutes(): Router {
  const router = new Router({ prefix: '/api/ntp' });
  router.get('/status', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, ntp: await ntpStatus() };
  });
  return router;
}

export function networkRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/network' });

  router.get('/resolve', requireRole('admin'), validateQuery(ResolveQuery, ['timeout_ms']), async (ctx) => {
    const q = ctx.input;
    const problems = checkResolve(q);
    if (Object.keys(problems).length) throw errors.validation(problems);
    let server: string | undefined;
    if ((q.via ?? 'cell') === 'cell') {
      const address = deps.dns.listenAddress;
      if (!address)
        throw errors.conflict(
          `the cell's resolver is not running: ${String(deps.dns.status()['reason'] ?? '')}; ask with via=system`,
        );
      server = `${address}:${deps.config.reach.dnsPort}`;
    }
    ctx.body = { ok: true, check: await resolveCheck(q.name, server, q.timeout_ms ?? 2000) };
  });

  router.get('/reach', requireRole('admin'), validateQuery(ReachQuery, ['timeout_ms']), async (ctx) => {
    const q = ctx.input;
    const problems = checkReach(q);
    if (Object.keys(problems).length) throw errors.validation(problems);
    ctx.body = { ok: true, check: await reachCheck(q.url, q.timeout_ms ?? 5000) };
  });

  router.get('/handshakes', requireRole('admin'), async (ctx) => {
    const status = await deps.peerNetwork.status();
    const names = await peerNamesByKey(deps.db);
    const now = Date.now();
    ctx.body = {
      ok: true,
      running: status.running,
      reason: status.running ? null : status.reason,
      peers: status.peers.map((p) => ({
        name: names.get(p.publicKey) ?? null,
        public_key: p.publicKey,
        latest_handshake: p.latestHandshake?.toISOString() ?? null,
        age_seconds: p.latestHandshake ? Math.max(0, Math.round((now - p.latestHandshake.getTime()) / 1000)) : null,
      })),
    };
  });
  return router;
}
