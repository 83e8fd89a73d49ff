import { readRegularFile } from '@pic/manifest/read-file';
import type { Db } from '../../db/database.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditLog } from '../audit/service.js';
import { insertTrustKey, listTrustKeys, parseTrustKey } from '../vault/trust-keys.js';

/** Fingerprints of the configured keys (cell.yaml store.trusted_keys) already added once. */
export const CONFIG_KEYS_SETTING = 'store.trust_keys_from_config';
/** A PEM public key is well under this; anything bigger is not one. */
const MAX_KEY_BYTES = 16 * 1024;

export interface ConfiguredKey {
  name: string;
  /** Absolute path of a PEM public key. */
  file: string;
}

/**
 * At start: adds each key cell.yaml names under store.trusted_keys to the vault's trust keys (the
 * same table POST /api/vault/trust-keys writes), audited as store.trust_key.seed. Each fingerprint
 * is added once: a key the admin later removes is not brought back, and a key already trusted
 * (under any name) is left as it is. A file that is missing, too big or not a public key is
 * logged and skipped; the cell starts anyway. Returns the fingerprints added.
 */
export async function seedConfiguredKeys(
  db: Db,
  audit: AuditLog,
  logger: Logger,
  keys: readonly ConfiguredKey[],
): Promise<string[]> {
  const added: string[] = [];
  for (const k of keys) {
    // A regular file of a few kB, read with a time limit (the shared catalog-file reader).
    const read = readRegularFile(k.file, { maxBytes: MAX_KEY_BYTES }).then((b) => b.toString('utf8'));
    const text = await read.catch((err: Error) => {
      logger.error('a store trust key from cell.yaml cannot be read', {
        name: k.name,
        file: k.file,
        error: err.message,
      });
      return undefined;
    });
    if (text === undefined) continue;
    const parsed = parseTrustKey(text);
    if ('problem' in parsed) {
      logger.error('a store trust key from cell.yaml is not usable', {
        name: k.name,
        file: k.file,
        problem: parsed.problem,
      });
      continue;
    }
    const seeded = (await readSetting<string[]>(db, CONFIG_KEYS_SETTING)) ?? [];
    const existing = await listTrustKeys(db);
    if (existing.some((e) => e.fingerprint === parsed.fingerprint)) continue;
    if (seeded.includes(parsed.fingerprint)) {
      logger.info('a store trust key from cell.yaml was removed by an admin; not adding it again', {
        name: k.name,
        fingerprint: parsed.fingerprint,
      });
      continue;
    }
    if (existing.some((e) => e.name === k.name)) {
      logger.error('a store trust key from cell.yaml has the name of another trusted key; skipped', {
        name: k.name,
        fingerprint: parsed.fingerprint,
      });
      continue;
    }
    await db.transaction().execute(async (trx) => {
      await insertTrustKey(trx, k.name, parsed);
      await writeSetting(trx, CONFIG_KEYS_SETTING, [...seeded, parsed.fingerprint]);
      audit.appendIn(trx, {
        actor: 'system',
        action: 'store.trust_key.seed',
        targetType: 'trust_key',
        targetId: k.name,
        result: 'ok',
        details: { fingerprint: parsed.fingerprint, source: 'cell.yaml store.trusted_keys', file: k.file },
      });
    });
    logger.info('trusting a store key from cell.yaml', { name: k.name, fingerprint: parsed.fingerprint });
    added.push(parsed.fingerprint);
  }
  return added;
}
