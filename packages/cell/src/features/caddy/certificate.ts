/**
 * The certificate Caddy serves for the cell's names: `<domain>` and `*.<domain>` in one certificate
 * from the cell's internal CA. It is an ordinary vault certificate (vault_certificates; its key a
 * vault secret); the setting `caddy.certificate` names the serial in use. A superseded one is
 * revoked (reason superseded), which also deletes its key.
 */
import type { Db } from '../../db/database.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import type { Logger } from '../../lib/logger.js';
import type { Vault } from '../vault/vault.js';
import { CertificateAuthority } from '../vault/ca.js';
import { findCertificate, type CertificateRow } from '../vault/queries.js';

export const CERTIFICATE_SETTING = 'caddy.certificate';
export const CERTIFICATE_DAYS = 90;
/** Renewed automatically once fewer days than this are left. */
export const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

export interface ServedCertificate {
  row: CertificateRow;
  keyPem: string;
}

export const namesFor = (domain: string): string[] => [domain, `*.${domain}`];

export function daysLeft(row: Pick<CertificateRow, 'not_after'>, now = Date.now()): number {
  return Math.floor((Date.parse(row.not_after) - now) / DAY_MS);
}

export class CellCertificate {
  readonly ca: CertificateAuthority;

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly logger: Logger,
  ) {
    this.ca = new CertificateAuthority(db, vault, logger);
  }

  /** The certificate in use, with its key, if there is one that is not revoked. */
  async current(): Promise<ServedCertificate | undefined> {
    const setting = await readSetting<{ serial: string }>(this.db, CERTIFICATE_SETTING);
    if (!setting) return undefined;
    const row = await findCertificate(this.db, setting.serial);
    if (!row || row.revoked_at || !row.key_secret) return undefined;
    const keyPem = await this.vault.get(row.key_secret);
    return keyPem ? { row, keyPem } : undefined;
  }

  /** The one in use when it covers `domain` and is not due for renewal; else a new one. */
  async ensure(domain: string, now = new Date()): Promise<ServedCertificate> {
    const cur = await this.current();
    const names = namesFor(domain);
    if (
      cur &&
      JSON.stringify(JSON.parse(cur.row.sans)) === JSON.stringify(names) &&
      daysLeft(cur.row, now.getTime()) > RENEW_BEFORE_DAYS
    )
      return cur;
    return (await this.issue(domain, now)).next;
  }

  /** Issues a new certificate for the domain and makes it the one in use; returns the previous one's serial. */
  async issue(domain: string, now = new Date()): Promise<{ next: ServedCertificate; previous: string | undefined }> {
    const previous = (await readSetting<{ serial: string }>(this.db, CERTIFICATE_SETTING))?.serial;
    const [name, ...altNames] = namesFor(domain);
    const issued = await this.ca.issue({ name: name!, altNames, type: 'server', days: CERTIFICATE_DAYS }, now);
    await this.db.transaction().execute(async (trx) => {
      await this.ca.record(trx, issued);
      await writeSetting(trx, CERTIFICATE_SETTING, { serial: issued.row.serial });
    });
    this.logger.info('caddy: issued the certificate for the cell names', {
      serial: issued.row.serial,
      not_after: issued.row.not_after,
    });
    return { next: { row: issued.row, keyPem: issued.privateKeyPem }, previous };
  }

  /** Revokes a superseded certificate (once Caddy serves its successor). */
  async retire(serial: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await findCertificate(trx, serial);
      if (row && !row.revoked_at) await this.ca.revoke(trx, serial, 'superseded');
    });
  }
}
