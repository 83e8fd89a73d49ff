import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { readSetting, writeSetting } from '../../db/settings.js';
import type { ConfigPatch, Identity, Network } from './schema.js';

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
  const next: CellSettings = {
    identity: { ...current.identity, ...patch.identity },
    network: { ...current.network, ...patch.network },
  };
  if (patch.identity) await writeIdentity(trx, next.identity);
  if (patch.network) await writeNetwork(trx, next.network);
  return readCellSettings(trx);
}
