import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// The resolver's custom records (features/dns): names and values validated before they are stored.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dns_records')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('A', 'AAAA', 'CNAME', 'TXT')`))
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('dns_records_name_type_value', ['name', 'type', 'value'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('dns_records').execute();
}
