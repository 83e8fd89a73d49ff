import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';

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
