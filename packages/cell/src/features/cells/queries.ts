/** The cells feature's SQL: every function takes the executor (db or trx) it runs on. */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { nowIso } from '../../lib/tokens.js';

type Db = Kysely<Database>;

export const LINK_COLUMNS = [
  'id',
  'name',
  'domain',
  'public_key',
  'endpoint',
  'subnet',
  'sync_port',
  'policy',
  'role',
  'send_seq',
  'recv_seq',
  'last_sync_at',
  'last_error',
  'created_at',
  'updated_at',
] as const;
export type LinkRow = NonNullable<Awaited<ReturnType<typeof findLinkByName>>>;

export const findLinkByName = (db: Db, name: string) =>
  db.selectFrom('cell_links').select(LINK_COLUMNS).where('name', '=', name).executeTakeFirst();
export const findLinkByKey = (db: Db, publicKey: string) =>
  db.selectFrom('cell_links').select(LINK_COLUMNS).where('public_key', '=', publicKey).executeTakeFirst();
export const findLinkById = (db: Db, id: number) =>
  db.selectFrom('cell_links').select(LINK_COLUMNS).where('id', '=', id).executeTakeFirst();
export const listLinks = (db: Db) => db.selectFrom('cell_links').select(LINK_COLUMNS).orderBy('name').execute();

export async function insertLink(
  db: Db,
  link: {
    name: string;
    domain: string;
    public_key: string;
    endpoint: string | null;
    subnet: string;
    sync_port: number;
    policy: string;
    role: 'inviter' | 'invitee';
  },
): Promise<LinkRow> {
  const now = nowIso();
  const { id } = await db
    .insertInto('cell_links')
    .values({ ...link, created_at: now, updated_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return (await findLinkById(db, id))!;
}

export const deleteLink = (db: Db, id: number) => db.deleteFrom('cell_links').where('id', '=', id).execute();

export const updateLinkPolicy = (db: Db, id: number, policy: string) =>
  db.updateTable('cell_links').set({ policy, updated_at: nowIso() }).where('id', '=', id).execute();

export const insertInvite = (db: Db, nonceHash: string, expiresAt: string, oneStep = false) =>
  db
    .insertInto('cell_invites')
    .values({ nonce_hash: nonceHash, expires_at: expiresAt, created_at: nowIso(), one_step: oneStep ? 1 : 0 })
    .execute();
/** One-step invites that may still be completed: while there is one, the link listener listens. */
export const openOneStepInvites = async (db: Db): Promise<number> =>
  Number(
    (
      await db
        .selectFrom('cell_invites')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('one_step', '=', 1)
        .where('used_at', 'is', null)
        .where('expires_at', '>', nowIso())
        .executeTakeFirstOrThrow()
    ).n,
  );
export const findInvite = (db: Db, nonceHash: string) =>
  db.selectFrom('cell_invites').selectAll().where('nonce_hash', '=', nonceHash).executeTakeFirst();
export const markInviteUsed = (db: Db, id: number, by: string) =>
  db
    .updateTable('cell_invites')
    .set({ used_at: nowIso(), used_by: by })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .executeTakeFirst();

/** Appends changes to a link's outbox with the next sequence numbers; returns the last one. */
export async function enqueue(db: Db, linkId: number, changes: string[]): Promise<number> {
  if (changes.length === 0) return 0;
  const link = await db.selectFrom('cell_links').select('send_seq').where('id', '=', linkId).executeTakeFirstOrThrow();
  const now = nowIso();
  const rows = changes.map((change, i) => ({ link_id: linkId, seq: link.send_seq + 1 + i, change, created_at: now }));
  for (let i = 0; i < rows.length; i += 200)
    await db
      .insertInto('cell_outbox')
      .values(rows.slice(i, i + 200))
      .execute();
  const last = link.send_seq + changes.length;
  await db.updateTable('cell_links').set({ send_seq: last }).where('id', '=', linkId).execute();
  return last;
}

export const pendingFor = (db: Db, linkId: number, limit: number) =>
  db
    .selectFrom('cell_outbox')
    .select(['seq', 'change'])
    .where('link_id', '=', linkId)
    .orderBy('seq')
    .limit(limit)
    .execute();

export const dropAcknowledged = (db: Db, linkId: number, throughSeq: number) =>
  db.deleteFrom('cell_outbox').where('link_id', '=', linkId).where('seq', '<=', throughSeq).execute();

export async function pendingCounts(db: Db): Promise<Map<number, number>> {
  const rows = await db
    .selectFrom('cell_outbox')
    .select((eb) => ['link_id', eb.fn.countAll<number>().as('n')])
    .groupBy('link_id')
    .execute();
  return new Map(rows.map((r) => [r.link_id, Number(r.n)]));
}

export const markSynced = (db: Db, id: number, error: string | null) =>
  db
    .updateTable('cell_links')
    .set(error === null ? { last_sync_at: nowIso(), last_error: null } : { last_error: error })
    .where('id', '=', id)
    .execute();

export const setLinkError = (db: Db, id: number, error: string | null) =>
  db.updateTable('cell_links').set({ last_error: error }).where('id', '=', id).execute();

export const setRecvSeq = (db: Db, id: number, seq: number) =>
  db.updateTable('cell_links').set({ recv_seq: seq, last_sync_at: nowIso() }).where('id', '=', id).execute();

export const remotePeers = (db: Db, linkId: number) =>
  db
    .selectFrom('cell_remote_peers')
    .select(['name', 'address', 'public_key', 'groups', 'enabled', 'updated_at'])
    .where('link_id', '=', linkId)
    .orderBy('name')
    .execute();

export async function upsertRemotePeer(
  db: Db,
  linkId: number,
  p: { name: string; address: string; public_key: string; groups: string[]; enabled: boolean },
): Promise<void> {
  const values = {
    address: p.address,
    public_key: p.public_key,
    groups: JSON.stringify(p.groups),
    enabled: p.enabled ? (1 as const) : (0 as const),
    updated_at: nowIso(),
  };
  await db
    .insertInto('cell_remote_peers')
    .values({ link_id: linkId, name: p.name, ...values })
    .onConflict((oc) => oc.columns(['link_id', 'name']).doUpdateSet(values))
    .execute();
}

export const deleteRemotePeer = (db: Db, linkId: number, name: string) =>
  db.deleteFrom('cell_remote_peers').where('link_id', '=', linkId).where('name', '=', name).execute();

/**
 * A peer's pushed state as JSON text, computed by SQLite: the same bytes as JSON.stringify of
 * { name, address, public_key, groups, enabled } (keys in this order, no spaces).
 */
const STATE_SQL = sql<string>`json_object('name', p.name, 'address', p.address, 'public_key', p.public_key,
  'groups', json(case when p.peer_group is null then '[]' else json_array(p.peer_group) end),
  'enabled', json(case when p.enabled = 1 then 'true' else 'false' end))`;

/** This cell's peers whose state differs from what was last queued (new or changed), in id order. */
export const changedOwnPeers = (db: Db) =>
  db
    .selectFrom('peers as p')
    .leftJoin('cell_pushed_peers as c', 'c.name', 'p.name')
    .select(['p.name', STATE_SQL.as('state')])
    .where((eb) => eb.or([eb('c.state', 'is', null), eb('c.state', '!=', STATE_SQL)]))
    .orderBy('p.id')
    .execute();

/** Names queued as pushed whose peer is gone. */
export const removedOwnPeers = (db: Db) =>
  db
    .selectFrom('cell_pushed_peers as c')
    .select('c.name')
    .where((eb) => eb.not(eb.exists(eb.selectFrom('peers').select('peers.id').whereRef('peers.name', '=', 'c.name'))))
    .orderBy('c.name')
    .execute();

export const pushedPeers = (db: Db) => db.selectFrom('cell_pushed_peers').select(['name', 'state']).execute();
export const setPushed = (db: Db, name: string, state: string) =>
  db
    .insertInto('cell_pushed_peers')
    .values({ name, state })
    .onConflict((oc) => oc.column('name').doUpdateSet({ state }))
    .execute();
export const unsetPushed = (db: Db, name: string) =>
  db.deleteFrom('cell_pushed_peers').where('name', '=', name).execute();
