import type { PeerRow } from './service.js';
import { isLive } from './service.js';

/** A handshake within this window means the peer is online (WireGuard re-keys every 2 minutes). */
export const ONLINE_WINDOW_MS = 3 * 60_000;

export interface PeerLiveState {
  latestHandshake: Date | null;
  endpoint: string | null;
  rxBytes: number;
  txBytes: number;
}

/** What the API shows of a peer: never its private key or PSK (they live in the vault). */
export function presentPeer(peer: PeerRow, live?: PeerLiveState, now = Date.now()) {
  const handshake = live?.latestHandshake ?? null;
  return {
    name: peer.name,
    description: peer.description,
    address: peer.address,
    public_key: peer.public_key,
    dns: JSON.parse(peer.dns) as string[],
    allowed_ips: JSON.parse(peer.allowed_ips) as string[],
    group: peer.peer_group,
    tags: JSON.parse(peer.tags) as string[],
    enabled: peer.enabled === 1,
    expires_at: peer.expires_at,
    expired: peer.expires_at !== null && peer.expires_at <= new Date(now).toISOString(),
    active: isLive(peer, new Date(now).toISOString()),
    online: handshake !== null && now - handshake.getTime() < ONLINE_WINDOW_MS,
    latest_handshake: handshake?.toISOString() ?? null,
    endpoint: live?.endpoint ?? null,
    rx_bytes: live?.rxBytes ?? 0,
    tx_bytes: live?.txBytes ?? 0,
    created_at: peer.created_at,
    updated_at: peer.updated_at,
  };
}
