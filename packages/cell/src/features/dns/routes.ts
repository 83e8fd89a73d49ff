import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { audited } from '../../http/audit.js';
import { transactional } from '../../http/transaction.js';
import { validateBody } from '../../http/validate.js';
import { errors } from '../../http/errors.js';
import { readCellSettings } from '../config/service.js';
import { EmptyBody, RecordBody, checkRecord } from './schema.js';
import { listRecords } from './queries.js';
import { addRecord, removeRecord } from './service.js';
import { presentRecord } from './presenter.js';

export function dnsRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/dns' });
  const { dns, db } = deps;
  /** After the change commits, the resolver gets the new records (a failed reload shows in status, not here). */
  const reloadAfter = async (_ctx: Context, next: Next) => {
    await next();
    await dns.converge().catch((err: unknown) => deps.logger.error('dns: reload failed', { error: String(err) }));
  };

  router.get('/', requireRole('admin'), async (ctx) => {
    const { domain } = (await readCellSettings(db)).identity;
    const address = dns.listenAddress ?? null;
    const builtin = address
      ? [
          { name: domain, type: 'A', value: address, builtin: true },
          { name: `*.${domain}`, type: 'A', value: address, builtin: true },
        ]
      : [];
    ctx.body = {
      ok: true,
      dns: {
        domain,
        address,
        port: deps.config.reach.dnsPort,
        upstreams: deps.config.reach.dnsUpstreams,
        status: dns.status(),
        records: [...builtin, ...(await listRecords(db)).map((r) => ({ ...presentRecord(r), builtin: false }))],
      },
    };
  });

  router.get('/records', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, records: (await listRecords(db)).map(presentRecord) };
  });

  router.post(
    'dns.record.create',
    '/records',
    requireRole('admin'),
    audited('dns_record'),
    validateBody(RecordBody, checkRecord),
    reloadAfter,
    transactional(db),
    async (ctx) => {
      const { name, type, value } = ctx.input;
      const row = await addRecord(ctx.trx, { name, type, value });
      ctx.audit.target(String(row.id));
      ctx.audit.note({ name: row.name, type: row.type });
      ctx.status = 201;
      ctx.body = { ok: true, record: presentRecord(row) };
    },
  );

  router.delete(
    'dns.record.delete',
    '/records/:id',
    requireRole('admin'),
    audited('dns_record', (ctx) => String(ctx.params['id'])),
    reloadAfter,
    transactional(db),
    async (ctx) => {
      await removeRecord(ctx.trx, Number(ctx.params['id']));
      ctx.body = { ok: true };
    },
  );

  router.post('dns.reload', '/reload', requireRole('admin'), audited('dns'), validateBody(EmptyBody), async (ctx) => {
    if (dns.status().state === 'not_configured')
      throw errors.conflict(`the resolver is not running: ${String(dns.status()['reason'])}`);
    await dns.converge(true);
    ctx.body = { ok: true, dns: dns.status() };
  });
  return router;
}
