import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_core.js';

/** Migrations are listed statically so the built cell needs no directory scanning. */
const migrations: Record<string, Migration> = {
  '0001_core': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
