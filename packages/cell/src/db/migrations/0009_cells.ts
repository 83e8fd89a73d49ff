import { sql, type Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// Linked cells (features/cells): invites this cell made, its links, the pushes pending per link,
// the peers each linked cell pushed here, and the state of this cell's own peers as last pushed.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('cell_invites')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    // SHA-256 (hex) of the invite's random nonce: the nonce itself is shown once and not kept
    .addColumn('nonce_hash', 'text', (c) => c.notNull().unique())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('used_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('cell_links')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    // the other cell's name and domain, unique among links
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('domain', 'text', (c) => c.notNull().unique())
    .addColumn('public_key', 'text', (c) => c.notNull().unique())
    .addColumn('endpoint', 'text')
    .addColumn('subnet', 'text', (c) => c.notNull())
    .addColumn('sync_port', 'integer', (c) => c.notNull())
    // what the linked cell's peers may reach here: JSON {"mode":"cell_only"} or {"mode":"services","services":[…]}
    .addColumn('policy', 'text', (c) => c.notNull().defaultTo('{"mode":"cell_only"}'))
    // who made the invite: 'inviter' (this cell) or 'invitee'
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('inviter', 'invitee')`))
    // the last sequence number this cell gave a push to the link, and the last it accepted from it
    .addColumn('send_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('recv_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_sync_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // Pushes not yet acknowledged by the linked cell, replayed in seq order when it comes back.
  await db.schema
    .createTable('cell_outbox')
    .addColumn('link_id', 'integer', (c) => c.notNull().references('cell_links.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('change', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('cell_outbox_pk', ['link_id', 'seq'])
    .execute();

  // The peers a linked cell pushed here: shown read-only, gone with the link.
  await db.schema
    .createTable('cell_remote_peers')
    .addColumn('link_id', 'integer', (c) => c.notNull().references('cell_links.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('enabled', 'integer', (c) => c.notNull().check(sql`enabled in (0, 1)`))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('cell_remote_peers_pk', ['link_id', 'name'])
    .execute();

  // This cell's own peers as last queued for its links: a change is the difference to this.
  await db.schema
    .createTable('cell_pushed_peers')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['cell_pushed_peers', 'cell_remote_peers', 'cell_outbox', 'cell_links', 'cell_invites']) {
    await db.schema.dropTable(t).execute();
  }
}
