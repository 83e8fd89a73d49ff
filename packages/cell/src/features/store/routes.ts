import Router from '@koa/router';
import type { Context } from 'koa';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { errors } from '../../http/errors.js';
import { requireRole } from '../../http/guard.js';
import { validateBody } from '../../http/validate.js';
import { findJob } from './queries.js';
import { presentJob } from './presenter.js';
import { InstallBody, RemoveBody } from './schema.js';

/** The service id of a write's body, for its audit entry, before the body is validated. */
export function bodyServiceId(ctx: Context): string | undefined {
  const id = (ctx.request as { body?: { id?: unknown } }).body?.id;
  return typeof id === 'string' ? id.slice(0, 64) : undefined;
}

/** /api/store: the signed catalog, install and remove (ADR 001, ADR 003). */
export function storeRoutes(deps: CellDeps): Router {
  const { db, store } = deps;
  const router = new Router({ prefix: '/api/store' });

  router.get('/', requireRole('admin'), async (ctx) => {
    ctx.body = await store.describe(ctx.state.user?.username ?? 'anonymous', ctx.ip || null);
  });

  router.get('/jobs/:job', requireRole('admin'), async (ctx) => {
    const id = Number(ctx.params['job']);
    const job = Number.isSafeInteger(id) ? await findJob(db, id) : undefined;
    if (!job) throw errors.notFound('no such job');
    ctx.body = { ok: true, job: presentJob(job) };
  });

  router.post(
    'store.install',
    '/install',
    requireRole('admin'),
    audited('service', bodyServiceId),
    validateBody(InstallBody),
    async (ctx) => {
      const { id, wait = false } = ctx.input;
      const { status, body } = await store.install(id, wait, ctx.state.user!.username, ctx.audit);
      ctx.status = status;
      ctx.body = body;
    },
  );

  router.post(
    'store.remove',
    '/remove',
    requireRole('admin'),
    audited('service', bodyServiceId),
    validateBody(RemoveBody),
    async (ctx) => {
      const { id, purge = false } = ctx.input;
      ctx.body = await store.remove(id, purge, ctx.state.user!.username, ctx.audit);
    },
  );

  return router;
}
