import Router from '@koa/router';
import { PassThrough, pipeline, Readable } from 'node:stream';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateBody, validateQuery } from '../../http/validate.js';
import { ArchiveBody, AuditQuery, checkArchiveBody, ExportQuery, VerifyQuery } from './schema.js';
import { archiveEntriesBefore, verifyArchives } from './archive.js';
import { audited } from '../../http/audit.js';
import { transactional } from '../../http/transaction.js';
import { queryAudit, streamAudit } from './query.js';
import { EXPORT_COLUMNS, presentAuditEntry } from './presenter.js';

export function auditRoutes(deps: CellDeps): Router {
  const { db, audit } = deps;
  const router = new Router({ prefix: '/api/audit' });

  router.get('/', requireRole('admin'), validateQuery(AuditQuery, ['limit', 'offset']), async (ctx) => {
    const { limit = 100, offset = 0, ...filters } = ctx.input;
    const { rows, total } = await queryAudit(db, filters, limit, offset);
    ctx.body = { ok: true, entries: rows.map(presentAuditEntry), total, limit, offset };
  });

  // Streams page by page: the table is never held in memory, whatever its size. The parts are joined
  // with stream.pipeline, so a failure in the middle (a page that cannot be read) ends this response
  // (the connection is cut: a 200 was already sent) and is logged; it never reaches the process.
  router.get('/export', requireRole('admin'), validateQuery(ExportQuery), async (ctx) => {
    const { format = 'csv', ...filters } = ctx.input;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    ctx.set('Content-Disposition', `attachment; filename="audit-${stamp}.${format}"`);
    const ended = (err: NodeJS.ErrnoException | null) => {
      if (!err || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return; // done, or the client went away
      deps.logger.warn('audit export ended early', { error: String(err) });
    };
    if (format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      const { stringify } = await import('csv-stringify'); // loaded on first export only
      const csv = stringify({
        header: true,
        columns: [...EXPORT_COLUMNS],
        record_delimiter: 'windows', // RFC 4180: CRLF
        // With a record_delimiter set, csv-stringify quotes only fields holding that delimiter: a bare \n
        // or \r (an attempted username) would start a line of its own. Quote them as RFC 4180 says.
        quote_record_delimiter: true,
        escape_formulas: true, // a cell like =HYPERLINK(…) from an attempted username must not run in a spreadsheet
      });
      ctx.body = pipeline(Readable.from(streamAudit(db, filters)), csv, ended);
    } else {
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = pipeline(Readable.from(jsonArray(streamAudit(db, filters))), new PassThrough(), ended);
    }
  });

  router.get('/verify', requireRole('admin'), validateQuery(VerifyQuery), async (ctx) => {
    const started = performance.now();
    const result = await audit.verify();
    const { archives } = ctx.input;
    const archiveCheck =
      archives === 'true' || archives === '1' ? await verifyArchives(db, deps.vault, deps.config.dataDir) : undefined;
    ctx.body = {
      ok: true,
      ...result,
      ...(archiveCheck ? { valid: result.valid && archiveCheck.valid, archives: archiveCheck } : {}),
      duration_ms: Math.round(performance.now() - started),
    };
  });

  // Moves entries older than `before` into an encrypted archive file; the live chain stays verifiable.
  const archiveBody = validateBody(ArchiveBody, checkArchiveBody);
  const archiveChain = [requireRole('admin'), audited('audit'), archiveBody, transactional(db)];
  router.post('audit.archive', '/archive', ...archiveChain, async (ctx) => {
    const { before } = ctx.input;
    const result = await archiveEntriesBefore(ctx.trx, deps.vault, deps.config.dataDir, before);
    ctx.audit.note({
      before,
      archived: result.archived,
      first_id: result.first_id ?? null,
      last_id: result.last_id ?? null,
    });
    ctx.body = { ok: true, ...result };
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
