import Router from '@koa/router';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateQuery } from '../../http/validate.js';
import { AuditQuery, ExportQuery } from './schema.js';
import { queryAudit, streamAudit } from './query.js';
import { EXPORT_COLUMNS, presentAuditEntry } from './presenter.js';

export function auditRoutes(deps: CellDeps): Router {
  const { db, audit } = deps;
  const router = new Router({ prefix: '/api/audit' });

  router.get('/', requireRole('admin'), validateQuery(AuditQuery, ['limit', 'offset']), async (ctx) => {
    const { limit = 100, offset = 0, ...filters } = ctx.input as AuditQuery;
    const { rows, total } = await queryAudit(db, filters, limit, offset);
    ctx.body = { ok: true, entries: rows.map(presentAuditEntry), total, limit, offset };
  });

  // Streams page by page: the table is never held in memory, whatever its size.
  router.get('/export', requireRole('admin'), validateQuery(ExportQuery), async (ctx) => {
    const { format = 'csv', ...filters } = ctx.input as ExportQuery;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    ctx.set('Content-Disposition', `attachment; filename="audit-${stamp}.${format}"`);
    if (format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      const csv = stringify({
        header: true,
        columns: [...EXPORT_COLUMNS],
        record_delimiter: 'windows', // RFC 4180: CRLF
        escape_formulas: true, // a cell like =HYPERLINK(…) from an attempted username must not run in a spreadsheet
      });
      Readable.from(streamAudit(db, filters)).pipe(csv);
      ctx.body = csv;
    } else {
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = Readable.from(jsonArray(streamAudit(db, filters)));
    }
  });

  router.get('/verify', requireRole('admin'), async (ctx) => {
    const started = performance.now();
    const result = await audit.verify();
    ctx.body = { ok: true, ...result, duration_ms: Math.round(performance.now() - started) };
  });

  return router;
}

async function* jsonArray(rows: AsyncIterable<Parameters<typeof presentAuditEntry>[0]>) {
  yield '[';
  let first = true;
  for await (const row of rows) {
    yield (first ? '\n' : ',\n') + JSON.stringify(presentAuditEntry(row));
    first = false;
  }
  yield '\n]\n';
}
