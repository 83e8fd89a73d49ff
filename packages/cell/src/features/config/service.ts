import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import type { ConfigPatch, Identity, Network } from './schema.js';
import { errors } from '../../http/errors.js';
import type { KnownHosts } from '../../http/hosts.js';
import { cellAddress } from '../wireguard/addresses.js';

export const IDENTITY_KEY = 'cell.identity';
export const NETWORK_KEY = 'cell.network';

export const DEFAULT_IDENTITY: Identity = { cell_name: 'mycell', domain: 'cell.lan' };
export const DEFAULT_NETWORK: Network = { wireguard_port: 51820, subnet: '10.8.0.0/24', endpoint: null };

export interface CellSettings {
  identity: Identity;
  network: Network;
}

export async function readCellSettings(db: Kysely<Database>): Promise<CellSettings> {
  const [identity, network] = await Promise.all([
    readSetting<Identity>(db, IDENTITY_KEY),
    readSetting<Network>(db, NETWORK_KEY),
  ]);
  return { identity: identity ?? DEFAULT_IDENTITY, network: network ?? DEFAULT_NETWORK };
}

export async function writeIdentity(trx: Kysely<Database>, identity: Identity): Promise<void> {
  await writeSetting(trx, IDENTITY_KEY, identity);
}

export async function writeNetwork(trx: Kysely<Database>, network: Network): Promise<void> {
  await writeSetting(trx, NETWORK_KEY, { ...network, endpoint: network.endpoint || null });
}

/** Applies a validated partial update and returns the settings as they now stand. */
export async function updateCellSettings(trx: Kysely<Database>, patch: ConfigPatch): Promise<CellSettings> {
  const current = await readCellSettings(trx);
  if (patch.network?.subnet !== undefined && patch.network.subnet !== current.network.subnet) {
    const peers = await trx
      .selectFrom('peers')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(peers.n) > 0) {
      throw errors.conflict('the subnet cannot change while peers have addresses in it; remove the peers first', {
        'network.subnet': 'in use by peers',
      });
    }
  }
  const next: CellSettings = {
    identity: { ...current.identity, ...patch.identity },
    network: { ...current.network, ...patch.network },
  };
  if (patch.identity) await writeIdentity(trx, next.identity);
  if (patch.network) await writeNetwork(trx, next.network);
  return readCellSettings(trx);
}

/** Tells `known` the names the settings give the cell: its domain and its WireGuard address. */
export async function refreshKnownHosts(db: Kysely<Database>, known: KnownHosts): Promise<void> {
  const { identity, network } = await readCellSettings(db);
  let address: string | undefined;
  try {
    address = cellAddress(network.subnet);
  } catch {
    address = undefined; // a subnet without hosts gives no address (it cannot be stored, but do not fail here)
  }
  known.setCellNames(identity.domain, address);
}
