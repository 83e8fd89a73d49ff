import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row: the recipient every secret is encrypted to. The key file must match it; a rotation
  // changes both, the database first (see features/vault/vault.ts).
  await db.schema
    .createTable('vault_state')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('rotated_at', 'text')
    .execute();

  // Every secret at rest: an age ciphertext (binary format) to `recipient`. Nothing else holds secrets.
  await db.schema
    .createTable('vault_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('ciphertext', 'blob', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vault_secrets_recipient').on('vault_secrets').column('recipient').execute();

  // The cell's own CA (its key is the vault secret `ca/key`).
  await db.schema
    .createTable('vault_ca')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    .addColumn('not_before', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('vault_certificates')
    .addColumn('serial', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('server', 'client')`))
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('sans', 'text', (c) => c.notNull()) // JSON array of DNS names
    .addColumn('not_before', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    // The vault secret holding the private key; null once revoked (the key is deleted then).
    .addColumn('key_secret', 'text')
    .addColumn('revoked_at', 'text')
    .addColumn('revocation_reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vault_certificates_name').on('vault_certificates').column('name').execute();

  // Public keys the store trusts to sign its catalog.
  await db.schema
    .createTable('vault_trust_keys')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('key_type', 'text', (c) => c.notNull().check(sql`key_type in ('ecdsa-p256', 'ed25519')`))
    .addColumn('fingerprint', 'text', (c) => c.notNull().unique()) // SHA-256 of the DER SPKI, hex
    .addColumn('public_key_pem', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['vault_trust_keys', 'vault_certificates', 'vault_ca', 'vault_secrets', 'vault_state']) {
    await db.schema.dropTable(table).execute();
  }
}
