import type { CertificateRow } from './queries.js';
import type { TrustKeyRow } from './trust-keys.js';

/** What the API shows of a certificate: never its key (nor where the key is kept). */
export function presentCertificate(row: CertificateRow) {
  return {
    serial: row.serial,
    name: row.name,
    type: row.type,
    subject: row.subject,
    sans: JSON.parse(row.sans) as string[],
    not_before: row.not_before,
    not_after: row.not_after,
    revoked: row.revoked_at !== null,
    revoked_at: row.revoked_at,
    revocation_reason: row.revocation_reason,
    created_at: row.created_at,
  };
}

export function presentTrustKey(row: TrustKeyRow) {
  return {
    name: row.name,
    key_type: row.key_type,
    fingerprint: row.fingerprint,
    public_key: row.public_key_pem,
    created_at: row.created_at,
  };
}
