import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, VaultCertificatesTable } from '../../db/schema.js';

/**
 * The vault's queries: its state, its secrets, the CA and the certificates it issued. Every
 * function takes the executor (`db`, or `trx` inside a transaction). Ciphertexts leave this module
 * only through the functions named for them (the vault decrypts them); listings use
 * SECRET_INFO_COLUMNS, which never names one.
 */

/** What may be shown of a secret: names and metadata, never its ciphertext. */
export const SECRET_INFO_COLUMNS = ['name', 'size', 'recipient', 'created_at', 'updated_at'] as const;
/** What decrypting a secret needs. */
const CIPHERTEXT_COLUMNS = ['name', 'ciphertext', 'recipient'] as const;

export type CiphertextRow = Pick<Selectable<Database['vault_secrets']>, (typeof CIPHERTEXT_COLUMNS)[number]>;

// ---- vault_state ----

export function readState(executor: Kysely<Database>) {
  return executor
    .selectFrom('vault_state')
    .select(['recipient', 'generation', 'rotated_at'])
    .where('id', '=', 1)
    .executeTakeFirst();
}

export function insertState(executor: Kysely<Database>, recipient: string, now: string) {
  return executor
    .insertInto('vault_state')
    .values({ id: 1, recipient, generation: 1, created_at: now, rotated_at: null })
    .execute();
}

export function recordRotation(trx: Transaction<Database>, recipient: string, generation: number, now: string) {
  return trx.updateTable('vault_state').set({ recipient, generation, rotated_at: now }).where('id', '=', 1).execute();
}

// ---- vault_secrets ----

/** Inserts or replaces a secret's ciphertext. */
export function upsertSecret(
  trx: Transaction<Database>,
  row: { name: string; ciphertext: Buffer; recipient: string; size: number },
  now: string,
) {
  const { ciphertext, recipient, size } = row;
  return trx
    .insertInto('vault_secrets')
    .values({ ...row, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('name').doUpdateSet({ ciphertext, recipient, size, updated_at: now }))
    .execute();
}

/** Replaces a secret's ciphertext with one to another recipient (a rotation). */
export function reencryptSecret(
  trx: Transaction<Database>,
  name: string,
  ciphertext: Buffer,
  recipient: string,
  now: string,
) {
  return trx
    .updateTable('vault_secrets')
    .set({ ciphertext, recipient, updated_at: now })
    .where('name', '=', name)
    .execute();
}

export function findCiphertext(executor: Kysely<Database>, name: string): Promise<CiphertextRow | undefined> {
  return executor.selectFrom('vault_secrets').select(CIPHERTEXT_COLUMNS).where('name', '=', name).executeTakeFirst();
}

/** Every ciphertext (under `prefix` when given), by name. */
export function listCiphertexts(executor: Kysely<Database>, prefix?: string): Promise<CiphertextRow[]> {
  let q = executor.selectFrom('vault_secrets').select(CIPHERTEXT_COLUMNS);
  if (prefix !== undefined) q = q.where('name', 'like', `${prefix}%`);
  return q.orderBy('name').execute();
}

/** Names and metadata, never a ciphertext; under `prefix` when given. */
export function listSecretInfo(executor: Kysely<Database>, prefix?: string) {
  let q = executor.selectFrom('vault_secrets').select(SECRET_INFO_COLUMNS);
  if (prefix !== undefined) q = q.where('name', 'like', `${prefix}%`);
  return q.orderBy('name').execute();
}

export async function deleteSecret(executor: Kysely<Database>, name: string): Promise<boolean> {
  const res = await executor.deleteFrom('vault_secrets').where('name', '=', name).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function countSecrets(executor: Kysely<Database>): Promise<number> {
  const row = await executor
    .selectFrom('vault_secrets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many secrets are encrypted to each recipient. */
export function countByRecipient(executor: Kysely<Database>) {
  return executor
    .selectFrom('vault_secrets')
    .select(['recipient', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('recipient')
    .execute();
}

// ---- vault_ca ----

export function findCaCertificatePem(executor: Kysely<Database>): Promise<{ certificate_pem: string } | undefined> {
  return executor.selectFrom('vault_ca').select('certificate_pem').where('id', '=', 1).executeTakeFirst();
}

export function insertCa(trx: Transaction<Database>, row: Omit<Selectable<Database['vault_ca']>, 'id'>) {
  return trx
    .insertInto('vault_ca')
    .values({ id: 1, ...row })
    .execute();
}

// ---- vault_certificates ----

export type CertificateRow = Selectable<VaultCertificatesTable>;

// vault_certificates holds no secrets (keys are vault secrets, referenced by name); columns named all the same.
const CERTIFICATE_COLUMNS = [
  'serial',
  'name',
  'type',
  'subject',
  'sans',
  'not_before',
  'not_after',
  'certificate_pem',
  'key_secret',
  'revoked_at',
  'revocation_reason',
  'created_at',
] as const;

export async function findCertificate(executor: Kysely<Database>, serial: string): Promise<CertificateRow | undefined> {
  return executor
    .selectFrom('vault_certificates')
    .select(CERTIFICATE_COLUMNS)
    .where('serial', '=', serial)
    .executeTakeFirst();
}

export async function listCertificates(executor: Kysely<Database>): Promise<CertificateRow[]> {
  return executor
    .selectFrom('vault_certificates')
    .select(CERTIFICATE_COLUMNS)
    .orderBy('created_at')
    .orderBy('serial')
    .execute();
}

export function insertCertificate(trx: Transaction<Database>, row: CertificateRow) {
  return trx.insertInto('vault_certificates').values(row).execute();
}

export function markRevoked(trx: Transaction<Database>, serial: string, reason: string, at: string) {
  return trx
    .updateTable('vault_certificates')
    .set({ revoked_at: at, revocation_reason: reason, key_secret: null })
    .where('serial', '=', serial)
    .execute();
}

/** The revoked certificates, for the CRL, oldest revocation first. */
export function listRevoked(executor: Kysely<Database>) {
  return executor
    .selectFrom('vault_certificates')
    .select(['serial', 'revoked_at', 'revocation_reason'])
    .where('revoked_at', 'is not', null)
    .orderBy('revoked_at')
    .execute();
}
