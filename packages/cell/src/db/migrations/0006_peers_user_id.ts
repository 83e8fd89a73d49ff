import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Every request of a signed-in peer checks its peer row by user_id (http/guard.ts): without this
// index that is a scan of the whole peers table, per request.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('peers_user_id').on('peers').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('peers_user_id').execute();
}
