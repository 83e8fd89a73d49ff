import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_core.js';
import * as m0002 from './0002_vault.js';
import * as m0003 from './0003_audit.js';
import * as m0004 from './0004_peers.js';
import * as m0005 from './0005_store.js';
import * as m0006 from './0006_peers_user_id.js';
import * as m0007 from './0007_store_pull.js';
import * as m0008 from './0008_dns_records.js';
import * as m0009 from './0009_cells.js';
import * as m0010 from './0010_cell_invites_one_step.js';

/** Migrations are listed statically so the built cell needs no directory scanning. */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_vault': m0002,
  '0003_audit': m0003,
  '0004_peers': m0004,
  '0005_store': m0005,
  '0006_peers_user_id': m0006,
  '0007_store_pull': m0007,
  '0008_dns_records': m0008,
  '0009_cells': m0009,
  '0010_cell_invites_one_step': m0010,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
