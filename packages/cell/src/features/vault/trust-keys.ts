import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, VaultTrustKeysTable } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import { nowIso } from '../../lib/tokens.js';

/**
 * Public keys the store trusts to sign its catalog (ECDSA P-256, as cosign makes them, or Ed25519),
 * each under a name, identified by the SHA-256 of its DER SubjectPublicKeyInfo (the `hint` a
 * sigstore bundle carries).
 */
export type TrustKeyType = VaultTrustKeysTable['key_type'];
export type TrustKeyRow = Selectable<VaultTrustKeysTable>;

export interface ParsedTrustKey {
  keyType: TrustKeyType;
  fingerprint: string;
  /** Re-exported from the parsed key: canonical PEM, whatever whitespace it arrived with. */
  pem: string;
}

/** What the store gets: a key ready for node:crypto verify(). */
export interface TrustedKey {
  name: string;
  keyType: TrustKeyType;
  fingerprint: string;
  key: KeyObject;
}

const PUBLIC_PEM = /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----$/;

export const fingerprintOf = (key: KeyObject): string =>
  createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');

/** Parses a PEM public key; returns why it is unacceptable instead of throwing. Never echoes the input. */
export function parseTrustKey(text: string): ParsedTrustKey | { problem: string } {
  const trimmed = text.trim();
  // createPublicKey would happily derive a public key from a private one: refuse those outright.
  if (/PRIVATE KEY/.test(trimmed))
    return { problem: 'is a private key: give the public key only, and treat that private key as exposed' };
  if (!PUBLIC_PEM.test(trimmed))
    return { problem: 'must be one PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)' };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: trimmed, format: 'pem' });
  } catch {
    return { problem: 'does not parse as a public key' };
  }
  let keyType: TrustKeyType;
  if (key.asymmetricKeyType === 'ed25519') keyType = 'ed25519';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    keyType = 'ecdsa-p256';
  else return { problem: `must be an ECDSA P-256 or Ed25519 key (got ${describeKey(key)})` };
  return {
    keyType,
    fingerprint: fingerprintOf(key),
    pem: key.export({ type: 'spki', format: 'pem' }).toString().trim(),
  };
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType} ${curve}` : String(key.asymmetricKeyType);
}

const COLUMNS = ['name', 'key_type', 'fingerprint', 'public_key_pem', 'created_at'] as const;

export async function listTrustKeys(executor: Kysely<Database>): Promise<TrustKeyRow[]> {
  return executor.selectFrom('vault_trust_keys').select(COLUMNS).orderBy('name').execute();
}

/** Adds a key; 409 when the name or the key itself is already there. */
export async function addTrustKey(
  trx: Transaction<Database>,
  name: string,
  parsed: ParsedTrustKey,
): Promise<TrustKeyRow> {
  const clash = await trx
    .selectFrom('vault_trust_keys')
    .select(['name', 'fingerprint'])
    .where((eb) => eb.or([eb('name', '=', name), eb('fingerprint', '=', parsed.fingerprint)]))
    .executeTakeFirst();
  if (clash?.name === name) throw errors.conflict(`a trust key named "${name}" exists already`, { name: 'is taken' });
  if (clash)
    throw errors.conflict(`this key is trusted already, as "${clash.name}"`, {
      public_key: `is already trusted as "${clash.name}"`,
    });
  return insertTrustKey(trx, name, parsed);
}

/** Records a key under `name` as it is (the callers checked for clashes); returns its row. */
export async function insertTrustKey(
  trx: Transaction<Database>,
  name: string,
  parsed: ParsedTrustKey,
): Promise<TrustKeyRow> {
  const row: TrustKeyRow = {
    name,
    key_type: parsed.keyType,
    fingerprint: parsed.fingerprint,
    public_key_pem: parsed.pem,
    created_at: nowIso(),
  };
  await trx.insertInto('vault_trust_keys').values(row).execute();
  return row;
}

/** Removes a key; 404 when there is none by that name. */
export async function deleteTrustKey(trx: Transaction<Database>, name: string): Promise<TrustKeyRow> {
  const row = await trx.selectFrom('vault_trust_keys').select(COLUMNS).where('name', '=', name).executeTakeFirst();
  if (!row) throw errors.notFound(`no trust key named "${name}"`);
  await trx.deleteFrom('vault_trust_keys').where('name', '=', name).execute();
  return row;
}

/** For the store: every trusted key as a KeyObject, to verify the catalog's signature with. */
export async function listTrustedKeys(executor: Kysely<Database>): Promise<TrustedKey[]> {
  const rows = await listTrustKeys(executor);
  return rows.map((r) => ({
    name: r.name,
    keyType: r.key_type,
    fingerprint: r.fingerprint,
    key: createPublicKey(r.public_key_pem),
  }));
}
