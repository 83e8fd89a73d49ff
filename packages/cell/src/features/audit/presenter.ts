import { AUDIT_COLUMNS, type AuditListRow } from './query.js';

/** An export's CSV columns: the same allow-list as the listing. */
export const EXPORT_COLUMNS = AUDIT_COLUMNS;

export function presentAuditEntry(row: AuditListRow) {
  return { ...row, details: JSON.parse(row.details) as Record<string, unknown> };
}
