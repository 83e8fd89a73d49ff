import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import { readCellSettings } from '../config/service.js';
import type { Vault } from '../vault/vault.js';
import { renderClientConfig } from '../wireguard/config.js';
import { cellAddress } from '../wireguard/addresses.js';
import type { PeerNetwork } from './network.js';
import { peerSecret, type PeerRow } from './service.js';

/**
 * The peer's full wg-quick config: its own private key and PSK from the vault, the cell's public
 * key and endpoint. This text is a secret; only the config/QR endpoints hand it out.
 */
export async function peerClientConfig(
  db: Kysely<Database>,
  vault: Vault,
  network: PeerNetwork,
  peer: PeerRow,
  cellResolver = false,
): Promise<string> {
  const { identity, network: net } = await readCellSettings(db);
  const privateKey = await vault.get(peerSecret(peer.id, 'private_key'));
  if (!privateKey)
    throw errors.conflict(`peer "${peer.name}" has no private key in the vault; delete and add it again`);
  const own = JSON.parse(peer.dns) as string[];
  // The cell's resolver (on its tunnel address) answers the cell's names, unless the peer has its own servers.
  const dns = own.length > 0 || !cellResolver ? own : [cellAddress(net.subnet)];
  const routes = JSON.parse(peer.allowed_ips) as string[];
  return renderClientConfig({
    privateKey,
    address: `${peer.address}/32`,
    dns,
    cellPublicKey: await network.cellPublicKey(),
    presharedKey: await network.psk(peer.id),
    // without a configured endpoint, the cell's domain on its WireGuard port is the best guess
    endpoint: net.endpoint || `${identity.domain}:${net.wireguard_port}`,
    // split tunnel by default: only the cell's subnet goes through the VPN
    allowedIps: routes.length > 0 ? routes : [net.subnet],
  });
}

/** A file name for the config download: the WireGuard apps name the tunnel after it. */
export const configFileName = (peerName: string) => `${peerName.slice(0, 15)}.conf`;
