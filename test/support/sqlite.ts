import { createRequire } from 'node:module';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { REPO_ROOT } from './cell-process.js';

// better-sqlite3 is a dependency of the cell package, not of the tests: resolve it from there.
const requireFromCell = createRequire(join(REPO_ROOT, 'packages', 'cell', 'package.json'));
const Database = requireFromCell('better-sqlite3') as typeof BetterSqlite3;

/** Opens a cell's database file directly, as an attacker or a curious admin with shell access would. */
export function openCellDb(dataDir: string): BetterSqlite3.Database {
  const db = new Database(join(dataDir, 'cell.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}
