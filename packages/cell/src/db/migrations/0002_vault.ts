import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Vault tables (filled in by the vault feature).
export async function up(_db: Kysely<unknown>): Promise<void> {}

export async function down(_db: Kysely<unknown>): Promise<void> {}
