import Router from '@koa/router';
import type SQLite from 'better-sqlite3';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateQuery } from '../../http/validate.js';
import { HistoryQuery } from './schema.js';
import { probeDatabase } from './service.js';

export function healthRoutes(deps: CellDeps, sqlite: SQLite.Database): Router {
  const router = new Router();

  /** Always public, so it says nothing private: up or not, version, uptime, whether setup is done. */
  router.get('/health', async (ctx) => {
    const database = probeDatabase(sqlite);
    ctx.status = database.ok ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = database.ok
      ? {
          ok: true,
          status: 'ok',
          version: deps.version,
          uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
          setup_complete: deps.setup.isComplete(),
        }
      : { ok: false, status: 'down', error: 'database unavailable', code: 'unavailable', fields: {} };
  });

  router.get(
    '/api/health/history',
    requireRole('admin'),
    validateQuery(HistoryQuery, ['limit', 'offset']),
    async (ctx) => {
      const q = ctx.input;
      const limit = q.limit ?? 100;
      const offset = q.offset ?? 0;
      const { samples, total } = await deps.health.history(limit, offset);
      ctx.body = { ok: true, samples, total, limit, offset, interval_s: deps.config.health.intervalMs / 1000 };
    },
  );

  return router;
}
