import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { overallState } from './service.js';

export function statusRoutes(deps: CellDeps): Router {
  const router = new Router();
  router.get('/api/status', requireRole('admin'), async (ctx) => {
    const subsystems = await deps.status.summary();
    ctx.body = {
      ok: true,
      status: overallState(subsystems),
      version: deps.version,
      uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
      subsystems,
    };
  });
  return router;
}
