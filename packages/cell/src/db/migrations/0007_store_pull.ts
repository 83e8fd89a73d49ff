import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// An install job that pulls its images shows how far the pull has come (`progress`, JSON: layers and
// bytes per image), and a failed job says why in a stable snake_case word (`error_code`, e.g.
// registry_unreachable, image_digest_mismatch) beside the sentence in `error`.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('service_jobs').addColumn('progress', 'text').execute();
  await db.schema.alterTable('service_jobs').addColumn('error_code', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('service_jobs').dropColumn('error_code').execute();
  await db.schema.alterTable('service_jobs').dropColumn('progress').execute();
}
