import type { Kysely, SelectQueryBuilder } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { AuditFilters } from './schema.js';

/** The columns that leave the API: listed, exported (in this order), and nothing else. */
export const AUDIT_COLUMNS = [
  'id',
  'ts',
  'actor',
  'action',
  'target_type',
  'target_id',
  'result',
  'ip',
  'details',
  'prev_hash',
  'hash',
] as const;

/** ISO-8601 input (any offset) → the stored UTC form, so text comparison orders correctly. */
const toUtc = (iso: string) => new Date(iso).toISOString();

function applyFilters<O>(q: SelectQueryBuilder<Database, 'audit_log', O>, f: AuditFilters) {
  if (f.actor) q = q.where('actor', '=', f.actor);
  if (f.action) q = q.where('action', '=', f.action);
  if (f.target_type) q = q.where('target_type', '=', f.target_type);
  if (f.target_id) q = q.where('target_id', '=', f.target_id);
  if (f.result) q = q.where('result', '=', f.result);
  if (f.since) q = q.where('ts', '>=', toUtc(f.since));
  if (f.until) q = q.where('ts', '<=', toUtc(f.until));
  return q;
}

/** Newest first, with the total that matches. */
export async function queryAudit(db: Kysely<Database>, f: AuditFilters, limit: number, offset: number) {
  const [rows, count] = await Promise.all([
    applyFilters(db.selectFrom('audit_log').select(AUDIT_COLUMNS), f)
      .orderBy('id', 'desc')
      .limit(limit)
      .offset(offset)
      .execute(),
    applyFilters(
      db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')),
      f,
    ).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: Number(count.n) };
}

/** Oldest first, one page at a time (keyset on id), so an export never holds the whole table. */
export async function* streamAudit(db: Kysely<Database>, f: AuditFilters, pageSize = 1000) {
  let after = 0;
  for (;;) {
    const rows = await applyFilters(db.selectFrom('audit_log').select(AUDIT_COLUMNS), f)
      .where('id', '>', after)
      .orderBy('id', 'asc')
      .limit(pageSize)
      .execute();
    for (const row of rows) yield row;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

export type AuditListRow = Awaited<ReturnType<typeof queryAudit>>['rows'][number];
