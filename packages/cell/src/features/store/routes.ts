import Router from '@koa/router';
import type { Context } from 'koa';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { errors, HttpError } from '../../http/errors.js';
import { requireRole } from '../../http/guard.js';
import { validateBody } from '../../http/validate.js';
import { requireEngine, describeError } from './engine.js';
import { findInstallation, findJob, type JobRow } from './installations.js';
import { ServiceBusyError } from './installer.js';
import { listTrustKeys } from '../vault/trust-keys.js';
import { presentJob, presentStore } from './presenter.js';
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
    const [{ catalog, installations, jobs }, engine, accepted] = [
      await store.view(),
      await store.engine(),
      await store.catalog.highestAccepted(),
    ];
    const actor = ctx.state.user?.username ?? 'anonymous';
    // A refusal met while reading is audited too (once per distinct refusal).
    if (!catalog.ok) await store.catalog.auditReadRefusal(catalog.refusal, actor, ctx.ip || null);
    else
      for (const s of catalog.services)
        if (s.refusal) await store.catalog.auditReadRefusal(s.refusal, actor, ctx.ip || null, s.entry.id);
    const keyNames = new Map((await listTrustKeys(db)).map((k) => [k.fingerprint, k.name]));
    const highest = accepted?.version ?? null;
    const body = presentStore(catalog, installations, jobs, engine, store.imageVerification, highest, keyNames);
    ctx.body = { ...body, engine: { ...body.engine, cell_id: store.cellId } };
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
      ctx.audit.note({ purge });
      const inst = await findInstallation(db, id);
      if (!inst && !purge) {
        ctx.audit.note({ purge, was_installed: false });
        ctx.body = { ok: true, removed: false, reason: `${id} is not installed` };
        return;
      }
      await requireEngine(store.runtime);
      let job: JobRow | undefined;
      try {
        job = await store.installer.remove(id, purge, ctx.state.user!.username, (trx, outcome) => {
          ctx.audit.note({ purge, was_installed: inst !== undefined, version: inst?.version ?? null, ...outcome });
          ctx.audit.writeIn(trx);
        });
      } catch (err) {
        if (err instanceof ServiceBusyError) throw errors.conflict(err.message);
        if (err instanceof HttpError) throw err;
        throw new HttpError(
          502,
          'remove_failed',
          `removing ${id} failed; POST /api/store/remove again to retry: ${describeError(err)}`,
        );
      }
      ctx.body = { ok: true, removed: inst !== undefined, purged: purge, job: job ? presentJob(job) : null };
    },
  );

  return router;
}
