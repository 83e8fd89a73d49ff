import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // `entry` holds the canonical JSON that was hashed; every other column is generated from it,
  // so the queryable columns cannot be edited apart from what the hash covers, and verifying
  // reads four columns instead of eleven. Ids are assigned by the appender (head + 1).
  await sql`
    CREATE TABLE audit_log (
      id INTEGER PRIMARY KEY,
      entry TEXT NOT NULL,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL,
      ts TEXT GENERATED ALWAYS AS (json_extract(entry, '$.ts')) VIRTUAL,
      actor TEXT GENERATED ALWAYS AS (json_extract(entry, '$.actor')) VIRTUAL,
      action TEXT GENERATED ALWAYS AS (json_extract(entry, '$.action')) VIRTUAL,
      target_type TEXT GENERATED ALWAYS AS (json_extract(entry, '$.target_type')) VIRTUAL,
      target_id TEXT GENERATED ALWAYS AS (json_extract(entry, '$.target_id')) VIRTUAL,
      result TEXT GENERATED ALWAYS AS (json_extract(entry, '$.result')) VIRTUAL,
      ip TEXT GENERATED ALWAYS AS (json_extract(entry, '$.ip')) VIRTUAL,
      details TEXT GENERATED ALWAYS AS (json_extract(entry, '$.details')) VIRTUAL
    )`.execute(db);
  await db.schema.createIndex('audit_log_ts').on('audit_log').columns(['ts', 'id']).execute();
  await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor', 'id']).execute();
  await db.schema.createIndex('audit_log_action').on('audit_log').columns(['action', 'id']).execute();
  await db.schema.createIndex('audit_log_result').on('audit_log').columns(['result', 'id']).execute();
  await db.schema.createIndex('audit_log_target').on('audit_log').columns(['target_type', 'target_id', 'id']).execute();

  // One row: where the live chain starts once older entries were archived, and where it must end.
  await db.schema
    .createTable('audit_chain')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('archived_through_id', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('archived_last_hash', 'text', (c) => c.notNull())
    .addColumn('head_id', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('head_hash', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  const genesis = '0'.repeat(64);
  await sql`insert into audit_chain (id, archived_through_id, archived_last_hash, head_id, head_hash, updated_at)
            values (1, 0, ${genesis}, 0, ${genesis}, ${new Date().toISOString()})`.execute(db);

  await db.schema
    .createTable('audit_archives')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('file', 'text', (c) => c.notNull().unique())
    .addColumn('first_id', 'integer', (c) => c.notNull())
    .addColumn('last_id', 'integer', (c) => c.notNull())
    .addColumn('first_prev_hash', 'text', (c) => c.notNull())
    .addColumn('last_hash', 'text', (c) => c.notNull())
    .addColumn('entries', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['audit_archives', 'audit_chain', 'audit_log']) await db.schema.dropTable(table).execute();
}
