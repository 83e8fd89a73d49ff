import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import { nowIso } from '../../lib/tokens.js';
import { readCellSettings } from '../config/service.js';
import { deleteUserSessions } from '../../http/session.js';
import { createUser, deleteUser, setUserDisabled } from '../users/service.js';
import type { Vault } from '../vault/vault.js';
import { generateKeyPair, generatePresharedKey } from '../wireguard/keys.js';
import { nextFreeAddresses } from '../wireguard/addresses.js';
import type { CreatePeerBody, UpdatePeerBody } from './schema.js';

import {
  deletePeerRow,
  findPeer,
  insertPeer,
  takenNames,
  trafficSince,
  updatePeerRow,
  usedAddresses,
  type PeerRow,
} from './queries.js';

export { findPeer, type PeerRow } from './queries.js';

/** Where a peer's secrets live in the vault. */
export const peerSecret = (peerId: number, kind: 'private_key' | 'psk') => `peer/${peerId}/${kind}`;

/** A peer is live (on the interface, able to sign in) when enabled and not expired. */
export function isLive(peer: { enabled: number; expires_at: string | null }, now = nowIso()): boolean {
  return peer.enabled === 1 && (peer.expires_at === null || peer.expires_at > now);
}

export async function requirePeer(db: Kysely<Database>, name: string): Promise<PeerRow> {
  const peer = await findPeer(db, name);
  if (!peer) throw errors.notFound(`no peer "${name}"`);
  return peer;
}

/** A peer just made, with its preshared key (the network primes its cache with it: no decryption). */
export interface CreatedPeer {
  peer: PeerRow;
  presharedKey: string;
}

/**
 * Creates the peer, its keys (private key and PSK into the vault), its address and its `peer`
 * login, all in `trx`. The caller hashed the login password before opening the transaction.
 */
export async function createPeer(
  trx: Transaction<Database>,
  vault: Vault,
  input: CreatePeerBody,
  passwordHash: string,
): Promise<PeerRow> {
  return (await createPeers(trx, vault, [{ input, passwordHash }]))[0]!.peer;
}

/**
 * Creates several peers in `trx`, as createPeer does each: the subnet's free addresses are read
 * once and handed out lowest first, in the order given. The first problem throws (409 for a taken
 * name or a full subnet) and the caller's transaction rolls back: none of them is created.
 */
export async function createPeers(
  trx: Transaction<Database>,
  vault: Vault,
  items: Array<{ input: CreatePeerBody; passwordHash: string }>,
): Promise<CreatedPeer[]> {
  const names = items.map((i) => i.input.name);
  const taken = new Set(await takenNames(trx, names));
  if (taken.size) {
    const list = [...taken];
    const quoted = list.map((n) => `"${n}"`).join(', ');
    const message = list.length > 1 ? `peers ${quoted} already exist` : `peer ${quoted} already exists`;
    throw errors.conflict(message, { name: 'is taken' });
  }
  const { network } = await readCellSettings(trx);
  const addresses = nextFreeAddresses(network.subnet, await usedAddresses(trx), items.length);
  if (addresses.length < items.length) {
    const room = addresses.length;
    throw errors.conflict(
      items.length === 1
        ? `the cell subnet ${network.subnet} is full`
        : `the cell subnet ${network.subnet} has room for ${room} more peers, not ${items.length}`,
      { subnet: 'has no free address' },
    );
  }
  const created: CreatedPeer[] = [];
  const secrets: Array<[name: string, value: string]> = [];
  for (const [n, { input, passwordHash }] of items.entries()) {
    const user = await createUser(trx, { username: input.name, role: 'peer', passwordHash });
    const keys = generateKeyPair();
    const presharedKey = generatePresharedKey();
    const now = nowIso();
    const peer = await insertPeer(trx, {
      name: input.name,
      description: input.description ?? '',
      user_id: user.id,
      public_key: keys.publicKey,
      address: addresses[n]!,
      dns: JSON.stringify(input.dns ?? []),
      allowed_ips: JSON.stringify(input.allowed_ips ?? []),
      peer_group: input.group ?? null,
      tags: JSON.stringify(input.tags ?? []),
      enabled: 1,
      expires_at: input.expires_at ? new Date(input.expires_at).toISOString() : null,
      created_at: now,
      updated_at: now,
    });
    secrets.push([peerSecret(peer.id, 'private_key'), keys.privateKey], [peerSecret(peer.id, 'psk'), presharedKey]);
    created.push({ peer, presharedKey });
  }
  // Two age encryptions per peer, the bulk of a batch's time: several at once, as their X25519
  // steps run on libuv's pool while the main thread does the rest.
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < secrets.length; i = next++) await vault.put(secrets[i]![0], secrets[i]![1], trx);
  };
  await Promise.all(Array.from({ length: Math.min(ENCRYPTIONS_IN_FLIGHT, secrets.length) }, worker));
  return created;
}

/** Vault writes of a batch in flight at once. */
const ENCRYPTIONS_IN_FLIGHT = 8;

/** Applies a validated change; keeps the peer's login in step with whether the peer is live. */
export async function updatePeer(trx: Transaction<Database>, name: string, patch: UpdatePeerBody): Promise<PeerRow> {
  const peer = await requirePeer(trx, name);
  const next = {
    description: patch.description ?? peer.description,
    dns: patch.dns ? JSON.stringify(patch.dns) : peer.dns,
    allowed_ips: patch.allowed_ips ? JSON.stringify(patch.allowed_ips) : peer.allowed_ips,
    enabled: patch.enabled === undefined ? peer.enabled : patch.enabled ? (1 as const) : (0 as const),
    expires_at:
      patch.expires_at === undefined
        ? peer.expires_at
        : patch.expires_at === null
          ? null
          : new Date(patch.expires_at).toISOString(),
    peer_group: patch.group === undefined ? peer.peer_group : patch.group,
    tags: patch.tags ? JSON.stringify(patch.tags) : peer.tags,
    updated_at: nowIso(),
  };
  await updatePeerRow(trx, peer.id, next);
  await syncPeerLogin(trx, peer.user_id, isLive({ enabled: next.enabled, expires_at: next.expires_at }));
  return (await findPeer(trx, name))!;
}

/** A disabled or expired peer cannot sign in, and its sessions end. */
export async function syncPeerLogin(trx: Kysely<Database>, userId: number | null, live: boolean): Promise<void> {
  if (userId === null) return;
  await setUserDisabled(trx, userId, !live);
  if (!live) await deleteUserSessions(trx, userId);
}

/** Hooks run inside the deleting transaction, e.g. the store deprovisions the peer's service accounts. */
export type PeerDeletionHook = (trx: Transaction<Database>, peer: PeerRow) => Promise<void>;

export async function deletePeer(
  trx: Transaction<Database>,
  vault: Vault,
  name: string,
  hooks: PeerDeletionHook[] = [],
): Promise<PeerRow> {
  const peer = await requirePeer(trx, name);
  for (const hook of hooks) await hook(trx, peer);
  await vault.delete(peerSecret(peer.id, 'private_key'), trx);
  await vault.delete(peerSecret(peer.id, 'psk'), trx);
  await deletePeerRow(trx, peer.id);
  if (peer.user_id !== null) await deleteUser(trx, peer.user_id);
  return peer;
}

const PERIOD_MS = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const;

/**
 * Traffic over a period from the sampled cumulative counters: one point per sample with the bytes
 * moved since the previous one. A counter that went down (interface restarted) counts from zero.
 */
export async function peerTraffic(
  db: Kysely<Database>,
  peerId: number,
  period: keyof typeof PERIOD_MS,
  now = Date.now(),
) {
  const since = new Date(now - PERIOD_MS[period]).toISOString();
  const rows = await trafficSince(db, peerId, since);
  const points: Array<{ ts: string; rx_bytes: number; tx_bytes: number }> = [];
  let prev: (typeof rows)[number] | undefined;
  for (const row of rows) {
    if (prev) {
      const rx = row.rx_bytes >= prev.rx_bytes ? row.rx_bytes - prev.rx_bytes : row.rx_bytes;
      const tx = row.tx_bytes >= prev.tx_bytes ? row.tx_bytes - prev.tx_bytes : row.tx_bytes;
      points.push({ ts: row.ts, rx_bytes: rx, tx_bytes: tx });
    }
    prev = row;
  }
  return {
    period,
    since,
    points,
    rx_bytes: points.reduce((n, p) => n + p.rx_bytes, 0),
    tx_bytes: points.reduce((n, p) => n + p.tx_bytes, 0),
  };
}
