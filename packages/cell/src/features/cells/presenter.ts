/** What the cells API shows: no secrets (there are none here: keys stay in the vault, MAC keys are never stored). */
import type { WireGuardPeerStatus } from '../wireguard/status.js';
import type { LinkRow } from './queries.js';
import { parsePolicy } from './service.js';

export function presentLink(link: LinkRow, extra: { pending?: number; live?: WireGuardPeerStatus } = {}) {
  return {
    name: link.name,
    domain: link.domain,
    public_key: link.public_key,
    endpoint: link.endpoint,
    subnet: link.subnet,
    sync_port: link.sync_port,
    role: link.role,
    policy: parsePolicy(link.policy),
    last_handshake: extra.live?.latestHandshake?.toISOString() ?? null,
    rx_bytes: extra.live?.rxBytes ?? 0,
    tx_bytes: extra.live?.txBytes ?? 0,
    last_sync: link.last_sync_at,
    last_error: link.last_error,
    pending_messages: extra.pending ?? 0,
    sent_seq: link.send_seq,
    received_seq: link.recv_seq,
    created_at: link.created_at,
  };
}

export function presentRemotePeer(p: {
  name: string;
  address: string;
  public_key: string;
  groups: string;
  enabled: number;
  updated_at: string;
}) {
  return {
    name: p.name,
    address: p.address,
    public_key: p.public_key,
    groups: JSON.parse(p.groups) as string[],
    enabled: p.enabled === 1,
    updated_at: p.updated_at,
  };
}
