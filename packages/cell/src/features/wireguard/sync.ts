/**
 * What to change on a live interface so that its peers become `desired`, touching nothing else:
 * the peers to remove and the peers to add or update (`wg addconf`). Unchanged peers are left out.
 *
 * Why not `wg syncconf`: it re-sends every peer (each has its allowed IPs dropped and added back)
 * and the interface's listen port, on which wireguard-go reopens its UDP socket even when the port
 * is the same. Packets arriving in those instants were lost, on every change to any peer (seen in
 * the tunnel test: one ping in 40 during an apply; verified with wireguard-go's verbose log).
 *
 * Input is `wg show <iface> dump`. Its preshared-key column is compared here and never leaves this
 * function; no error message quotes a line.
 */
import type { WgPeer } from './config.js';
import { formatIPv4, networkOf, parseCidr } from '../../lib/net.js';
import { splitWgShowDump } from './status.js';

export interface PeerSyncPlan {
  /** Public keys to remove: not wanted, or wanted without the preshared key they have (wg cannot unset one). */
  remove: string[];
  /** Peers to add or update with `wg addconf`, in the order given. */
  upsert: WgPeer[];
  /** Public keys of the wanted peers the interface does not hold at all. */
  missing: string[];
}

interface LivePeer {
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string;
  keepalive: number;
}

/** A CIDR as `wg show` prints it (IPv4 host bits cleared); anything else as given. */
function canonicalCidr(text: string): string {
  const c = parseCidr(text);
  return c ? `${formatIPv4(networkOf(c))}/${c.prefix}` : text.toLowerCase();
}

const allowedKey = (cidrs: string[]): string => cidrs.map(canonicalCidr).sort().join(',');

function parseLivePeers(dump: string): Map<string, LivePeer> {
  const live = new Map<string, LivePeer>();
  for (const [publicKey, psk, endpoint, allowedIps, , , , keepalive] of splitWgShowDump(dump).peers) {
    live.set(publicKey, {
      presharedKey: psk === '(none)' ? null : psk,
      endpoint: endpoint === '(none)' ? null : endpoint,
      allowedIps: allowedIps === '(none)' ? '' : allowedKey(allowedIps.split(',')),
      keepalive: keepalive === 'off' ? 0 : Number(keepalive),
    });
  }
  return live;
}

export function planPeerSync(desired: WgPeer[], dump: string): PeerSyncPlan {
  const live = parseLivePeers(dump);
  const wanted = new Set(desired.map((p) => p.publicKey));
  const remove = [...live.keys()].filter((key) => !wanted.has(key));
  const upsert: WgPeer[] = [];
  const missing: string[] = [];
  for (const peer of desired) {
    const now = live.get(peer.publicKey);
    if (!now) {
      upsert.push(peer);
      missing.push(peer.publicKey);
      continue;
    }
    if (now.presharedKey !== null && peer.presharedKey === undefined) {
      remove.push(peer.publicKey); // re-created without it: its session starts over, as it must
      upsert.push(peer);
      continue;
    }
    const changed =
      (peer.presharedKey ?? null) !== now.presharedKey ||
      allowedKey(peer.allowedIps) !== now.allowedIps ||
      (peer.persistentKeepalive || 0) !== now.keepalive ||
      (peer.endpoint !== undefined && peer.endpoint !== now.endpoint);
    if (changed) upsert.push(peer);
  }
  return { remove, upsert, missing };
}
