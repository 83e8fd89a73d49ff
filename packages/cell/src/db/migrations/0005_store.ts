import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// The store (ADR 001, ADR 003): installed services, their install/remove jobs, and the accounts the
// cell provisioned in them. The highest accepted catalog index version and the cell's runtime id
// are settings rows (store.index, store.cell_id).
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per service that is installed or on its way in or out. The verified manifest is kept,
  // so an installed service keeps working (routes, accounts, removal) whatever the catalog does later.
  await db.schema
    .createTable('service_installations')
    .addColumn('service_id', 'text', (c) => c.primaryKey())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('manifest', 'text', (c) => c.notNull())
    .addColumn('manifest_digest', 'text', (c) => c.notNull())
    .addColumn('index_version', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('installing', 'installed', 'removing')`))
    .addColumn('job_id', 'integer')
    .addColumn('installed_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // Install and remove jobs. `resources` is a JSON array of what the job created (written before
  // each creation), so a failure — or a crash, found at the next start — can be rolled back.
  await db.schema
    .createTable('service_jobs')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('service_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('install', 'remove')`))
    .addColumn('state', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`state in ('verifying', 'pulling', 'creating', 'starting', 'healthy', 'removing', 'removed', 'failed')`,
        ),
    )
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('resources', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('purge', 'integer', (c) => c.notNull().defaultTo(0).check(sql`purge in (0, 1)`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('service_jobs_service').on('service_jobs').columns(['service_id', 'id']).execute();

  // Accounts the cell provisioned inside services. The password is a vault secret
  // (service/<id>/account/<row id>), never a column. A row in state 'deleting' is a tombstone: the
  // account still has to be removed from the service (its peer is gone, or the service was down).
  await db.schema
    .createTable('service_accounts')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('service_id', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('peer_id', 'integer', (c) => c.references('peers.id').onDelete('set null'))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('active').check(sql`state in ('active', 'deleting')`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('service_accounts_service_username', ['service_id', 'username'])
    .execute();
  await db.schema.createIndex('service_accounts_peer').on('service_accounts').column('peer_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('service_accounts').execute();
  await db.schema.dropTable('service_jobs').execute();
  await db.schema.dropTable('service_installations').execute();
}
