import type { AuditListRow } from './query.js';

export const EXPORT_COLUMNS = [
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

export function presentAuditEntry(row: AuditListRow) {
  return { ...row, details: JSON.parse(row.details) as Record<string, unknown> };
}
