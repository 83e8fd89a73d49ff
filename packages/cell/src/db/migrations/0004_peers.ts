import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('peers')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    // the peer's own login (role peer); removed with the peer
    .addColumn('user_id', 'integer', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('public_key', 'text', (c) => c.notNull().unique())
    .addColumn('address', 'text', (c) => c.notNull().unique())
    // JSON arrays: DNS servers and the routes the client sends through the tunnel
    .addColumn('dns', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('allowed_ips', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('peer_group', 'text')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1).check(sql`enabled in (0, 1)`))
    .addColumn('expires_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('peers_group').on('peers').columns(['peer_group', 'name']).execute();
  await db.schema.createIndex('peers_expires_at').on('peers').column('expires_at').execute();

  // Sampled counters from `wg show`, for GET /api/peers/<name>/traffic.
  await db.schema
    .createTable('peer_traffic')
    .addColumn('peer_id', 'integer', (c) => c.notNull().references('peers.id').onDelete('cascade'))
    .addColumn('ts', 'text', (c) => c.notNull())
    .addColumn('rx_bytes', 'integer', (c) => c.notNull())
    .addColumn('tx_bytes', 'integer', (c) => c.notNull())
    .addColumn('latest_handshake', 'text')
    .execute();
  await db.schema.createIndex('peer_traffic_peer_ts').on('peer_traffic').columns(['peer_id', 'ts']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('peer_traffic').execute();
  await db.schema.dropTable('peers').execute();
}
