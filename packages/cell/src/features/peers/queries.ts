import { sql, type Insertable, type Kysely, type Transaction, type Updateable } from 'kysely';
import type { Database, PeersTable } from '../../db/schema.js';
import { nowIso } from '../../lib/tokens.js';
import type { ListPeersQuery } from './schema.js';

/**
 * The peers table's queries. Every function takes the executor (`db`, or `trx` inside a
 * transaction). Only the columns in PEER_COLUMNS leave this module: the peers table holds no
 * secret (keys live in the vault), and this allow-list keeps it that way as columns are added.
 */
export const PEER_COLUMNS = [
  'id',
  'name',
  'description',
  'user_id',
  'public_key',
  'address',
  'dns',
  'allowed_ips',
  'peer_group',
  'tags',
  'enabled',
  'expires_at',
  'created_at',
  'updated_at',
] as const;

export async function findPeer(db: Kysely<Database>, name: string) {
  return db.selectFrom('peers').select(PEER_COLUMNS).where('name', '=', name).executeTakeFirst();
}

export type PeerRow = Awaited<ReturnType<typeof findPeer>> & object;

/** The peer of a login (users.role = 'peer'), or undefined: the one "peer of this login" lookup. */
export async function findPeerOfUser(db: Kysely<Database>, userId: number): Promise<PeerRow | undefined> {
  return db.selectFrom('peers').select(PEER_COLUMNS).where('user_id', '=', userId).executeTakeFirst();
}

/** public key → peer name, for naming what the WireGuard interface reports. */
export async function peerNamesByKey(db: Kysely<Database>): Promise<Map<string, string>> {
  const rows = await db.selectFrom('peers').select(['name', 'public_key']).execute();
  return new Map(rows.map((p) => [p.public_key, p.name]));
}

/** Values per `IN (…)` list: well under SQLite's limit on bound parameters. */
const IN_CHUNK = 500;

/** Runs `query` on `values` IN_CHUNK at a time; the rows of every chunk, in order. */
async function inChunks<V, R>(values: V[], query: (chunk: V[]) => Promise<R[]>): Promise<R[]> {
  const rows: R[] = [];
  for (let i = 0; i < values.length; i += IN_CHUNK) rows.push(...(await query(values.slice(i, i + IN_CHUNK))));
  return rows;
}

/** Which of `names` are taken. */
export async function takenNames(executor: Kysely<Database>, names: string[]): Promise<string[]> {
  const rows = await inChunks(names, (chunk) =>
    executor.selectFrom('peers').select('name').where('name', 'in', chunk).execute(),
  );
  return rows.map((r) => r.name);
}

/** The peers with these public keys: what the interface needs of each, and its name. */
export function peersWithKeys(executor: Kysely<Database>, keys: string[]) {
  return inChunks(keys, (chunk) =>
    executor
      .selectFrom('peers')
      .select(['id', 'name', 'public_key', 'address', 'enabled', 'expires_at'])
      .where('public_key', 'in', chunk)
      .orderBy('id')
      .execute(),
  );
}

/** Every peer's id and public key. */
export function listPeerKeys(executor: Kysely<Database>) {
  return executor.selectFrom('peers').select(['id', 'public_key']).execute();
}

/** The peers that belong on the interface at `now` (enabled, not expired), by id. */
export function listLivePeers(executor: Kysely<Database>, now: string) {
  return executor
    .selectFrom('peers')
    .select(['id', 'public_key', 'address'])
    .where('enabled', '=', 1)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('id')
    .execute();
}

/** Every peer's tunnel address. */
export async function usedAddresses(executor: Kysely<Database>): Promise<string[]> {
  return (await executor.selectFrom('peers').select('address').execute()).map((r) => r.address);
}

export function insertPeer(trx: Transaction<Database>, values: Insertable<PeersTable>): Promise<PeerRow> {
  return trx.insertInto('peers').values(values).returning(PEER_COLUMNS).executeTakeFirstOrThrow();
}

export async function updatePeerRow(trx: Transaction<Database>, id: number, patch: Updateable<PeersTable>) {
  await trx.updateTable('peers').set(patch).where('id', '=', id).execute();
}

export async function deletePeerRow(trx: Transaction<Database>, id: number) {
  await trx.deleteFrom('peers').where('id', '=', id).execute();
}

export async function listPeers(db: Kysely<Database>, q: ListPeersQuery) {
  let base = db.selectFrom('peers');
  if (q.group) base = base.where('peer_group', '=', q.group);
  if (q.enabled) base = base.where('enabled', '=', q.enabled === 'true' ? 1 : 0);
  // the user's text matches literally: % and _ are escaped, and SQLite needs the ESCAPE clause to honour that
  if (q.q) base = base.where(sql<boolean>`name like ${`%${q.q.replace(/[%_\\]/g, '\\$&')}%`} escape '\\'`);
  // tags is a JSON array: match an element exactly, not a substring
  if (q.tag)
    base = base.where(sql<boolean>`exists (select 1 from json_each(peers.tags) where json_each.value = ${q.tag})`);
  const limit = q.limit ?? 100;
  const offset = q.offset ?? 0;
  const [peers, count] = await Promise.all([
    base.select(PEER_COLUMNS).orderBy('name').limit(limit).offset(offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { peers, total: Number(count.n), limit, offset };
}

/** Peers whose expiry has passed but whose login is still open: the expiry job closes them. */
export async function expiredButOpen(db: Kysely<Database>, now = nowIso()) {
  return db
    .selectFrom('peers')
    .innerJoin('users', 'users.id', 'peers.user_id')
    .select(['peers.id', 'peers.name', 'peers.user_id', 'peers.public_key'])
    .where('peers.expires_at', '<=', now)
    .where('users.disabled', '=', 0)
    .execute();
}

/** A peer's sampled traffic counters since `since`, oldest first. */
export function trafficSince(executor: Kysely<Database>, peerId: number, since: string) {
  return executor
    .selectFrom('peer_traffic')
    .select(['ts', 'rx_bytes', 'tx_bytes'])
    .where('peer_id', '=', peerId)
    .where('ts', '>=', since)
    .orderBy('ts')
    .execute();
}

export async function insertTraffic(trx: Transaction<Database>, samples: Insertable<Database['peer_traffic']>[]) {
  await trx.insertInto('peer_traffic').values(samples).execute();
}

/** Forgets traffic samples older than `cutoff`. */
export async function pruneTraffic(executor: Kysely<Database>, cutoff: string) {
  await executor.deleteFrom('peer_traffic').where('ts', '<', cutoff).execute();
}
