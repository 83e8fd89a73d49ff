import { readRegularFile } from '@pic/manifest/read-file';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type {
  CatalogRefusal,
  IndexEntry,
  RefusalCode,
  ServiceManifest,
  TrustedKeyInput,
  VerifiedIndex,
} from '@pic/manifest';
import type { Database } from '../../db/schema.js';
import type { Db } from '../../db/database.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import type { AuditLog } from '../audit/service.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import { insertTrustKey, listTrustKeys, listTrustedKeys, parseTrustKey } from '../vault/trust-keys.js';
import { manifestLib } from './manifest-lib.js';

/** The store key a catalog ships (@pic/manifest's PUBLIC_KEY_PATH; not imported, so starting a cell does not load sigstore). */
const PUBLIC_KEY_PATH = 'services-index/store.pub.pem';

/** A PEM public key is a few hundred bytes; the trust-key API takes at most 16 KiB. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

/** The settings row remembering the newest index this cell accepted (rollback protection, ADR 001). */
export const INDEX_SETTING = 'store.index';
/** Set once the first trust key was seeded, so deleting every key later does not bring it back. */
export const SEEDED_SETTING = 'store.trust_seeded';
/** The name the repository's store key gets when it is seeded. */
export const SEED_KEY_NAME = 'pic-store';

export interface AcceptedIndex {
  version: number;
  digest: string;
  accepted_at: string;
}

/** Why the cell refuses a catalog, a manifest or an image, as the API and the audit log show it. */
export interface Refusal {
  code: RefusalCode | 'unsigned_image' | 'reserved_port';
  reason: string;
  details: Record<string, string | number>;
}

export function toRefusal(err: CatalogRefusal): Refusal {
  return { code: err.code, reason: err.message, details: err.details };
}

export interface CatalogService {
  entry: IndexEntry;
  /** Present when the manifest verified against the signed index. */
  manifest?: ServiceManifest;
  /** Present when it did not (mix-and-match, missing, invalid): only this service is unusable. */
  refusal?: Refusal;
}

export type CatalogView =
  | { ok: true; index: VerifiedIndex; services: CatalogService[] }
  | { ok: false; refusal: Refusal };

/** The trusted keys in the form @pic/manifest takes them. */
export async function storeTrustedKeys(db: Kysely<Database>): Promise<TrustedKeyInput[]> {
  return (await listTrustedKeys(db)).map((k) => ({ fingerprint: k.fingerprint, key: k.key }));
}

/**
 * The signed catalog as this cell sees it: the index is verified against the vault's trust keys
 * (signature, rollback, expiry) before a byte of it is used, then every manifest is checked against
 * the digest the index lists. The catalog is read from disk each time (it is small); the newest
 * accepted version is remembered in the database.
 */
export class StoreCatalog {
  /** Refusals already written to the audit log by reads, so polling does not flood the log. */
  private readonly audited = new Set<string>();

  constructor(
    private readonly db: Db,
    readonly root: string,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async highestAccepted(): Promise<AcceptedIndex | undefined> {
    return readSetting<AcceptedIndex>(this.db, INDEX_SETTING);
  }

  /** Verifies the index; throws CatalogRefusal. Remembers a newer version once it is accepted. */
  async index(): Promise<VerifiedIndex> {
    const accepted = await this.highestAccepted();
    const { readCatalogIndex } = await manifestLib();
    const verified = await readCatalogIndex({
      root: this.root,
      trustedKeys: await storeTrustedKeys(this.db),
      highestAcceptedVersion: accepted?.version ?? null,
      // the same version with other contents is refused (version_reused): the digest is remembered with it
      highestAcceptedDigest: accepted?.digest ?? null,
      now: this.now(),
    });
    if (!accepted || verified.index.version > accepted.version) {
      await writeSetting(this.db, INDEX_SETTING, {
        version: verified.index.version,
        digest: verified.digest,
        accepted_at: nowIso(),
      } satisfies AcceptedIndex);
      this.logger.info('store catalog index accepted', {
        version: verified.index.version,
        digest: verified.digest,
        previous: accepted?.version ?? null,
      });
    }
    return verified;
  }

  /** The whole catalog, each manifest verified on its own. Never throws a CatalogRefusal. */
  async read(): Promise<CatalogView> {
    const { CatalogRefusal, readCatalogManifest } = await manifestLib();
    let index: VerifiedIndex;
    try {
      index = await this.index();
    } catch (err) {
      if (err instanceof CatalogRefusal) return { ok: false, refusal: toRefusal(err) };
      throw err;
    }
    const services: CatalogService[] = [];
    for (const entry of index.index.services) {
      try {
        services.push({ entry, manifest: await readCatalogManifest(this.root, index.index, entry.id) });
      } catch (err) {
        if (!(err instanceof CatalogRefusal)) throw err;
        services.push({ entry, refusal: toRefusal(err) });
      }
    }
    return { ok: true, index, services };
  }

  /** One service's verified manifest and the index that vouches for it; throws CatalogRefusal. */
  async manifest(id: string): Promise<{ index: VerifiedIndex; manifest: ServiceManifest }> {
    const index = await this.index();
    const { readCatalogManifest } = await manifestLib();
    return { index, manifest: await readCatalogManifest(this.root, index.index, id) };
  }

  /**
   * Writes a refusal met while only reading (GET /api/store) to the audit log, once per distinct
   * refusal: a console polling the store must not write the same entry every few seconds.
   * Writes (install) are audited by the request's own entry.
   */
  async auditReadRefusal(refusal: Refusal, actor: string, ip: string | null, serviceId?: string): Promise<void> {
    const key = `${serviceId ?? ''}|${refusal.code}|${refusal.reason}`;
    if (this.audited.has(key)) return;
    if (this.audited.size >= 100) this.audited.clear();
    this.audited.add(key);
    await this.audit.append({
      actor,
      action: 'store.catalog.refused',
      targetType: serviceId ? 'service' : 'catalog',
      targetId: serviceId ?? null,
      result: 'denied',
      ip,
      details: { refusal: refusal.code, reason: refusal.reason, ...refusal.details },
    });
    this.logger.warn('store catalog refused', { service: serviceId, refusal: refusal.code, reason: refusal.reason });
  }
}

/**
 * First start: the cell trusts the store key the repository ships (services-index/store.pub.pem),
 * under the name "pic-store", when it trusts no key yet. It happens once; an admin who later removes
 * every key is not overruled. Returns the fingerprint seeded, if any.
 */
export async function seedTrustKey(
  db: Db,
  audit: AuditLog,
  logger: Logger,
  repoRoot: string,
): Promise<string | undefined> {
  if (await readSetting<boolean>(db, SEEDED_SETTING)) return undefined;
  if ((await listTrustKeys(db)).length > 0) {
    await writeSetting(db, SEEDED_SETTING, true);
    return undefined;
  }
  const file = join(repoRoot, PUBLIC_KEY_PATH);
  let text: string;
  try {
    // a regular file of a few kB only, read with a time limit: a FIFO here must not hold up the start
    text = (await readRegularFile(file, { maxBytes: MAX_KEY_FILE_BYTES })).toString('utf8');
  } catch (err) {
    // The repository ships no key today (services-index/README.md); keys come from cell.yaml or the API.
    if ((err as { problem?: string }).problem === 'missing') {
      const hint = 'the catalog ships no store key to trust; add one with store.trusted_keys or /api/vault/trust-keys';
      logger.info(hint, { file });
    } else logger.warn('no store key to seed the trust keys with', { file, error: (err as Error).message });
    return undefined;
  }
  const parsed = parseTrustKey(text);
  if ('problem' in parsed) {
    logger.error('the repository store key cannot be trusted', { file, problem: parsed.problem });
    return undefined;
  }
  await db.transaction().execute(async (trx) => {
    await insertTrustKey(trx, SEED_KEY_NAME, parsed);
    await writeSetting(trx, SEEDED_SETTING, true);
    audit.appendIn(trx, {
      actor: 'system',
      action: 'store.trust_key.seed',
      targetType: 'trust_key',
      targetId: SEED_KEY_NAME,
      result: 'ok',
      details: { fingerprint: parsed.fingerprint, source: PUBLIC_KEY_PATH },
    });
  });
  logger.info('seeded the store trust key', { name: SEED_KEY_NAME, fingerprint: parsed.fingerprint });
  return parsed.fingerprint;
}
