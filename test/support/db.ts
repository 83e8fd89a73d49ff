/**
 * Direct access to a cell's SQLite file (`<dataDir>/cell.db`) from a test, for the few things the
 * API cannot do yet (creating a peer-role user) and for checking persisted effects.
 *
 * better-sqlite3 is a dependency of the cell package, not of the test project, so it is loaded
 * through a `require` rooted at packages/cell/package.json: the same native build the cell uses.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './cell-process.js';

/** The slice of better-sqlite3's API these tests use (its types live in the cell package only). */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): any;
  all(...params: unknown[]): any[];
}
export interface SqliteHandle {
  prepare(sql: string): SqliteStatement;
  pragma(sql: string): unknown;
  exec(sql: string): unknown;
  close(): void;
}
type SqliteConstructor = new (file: string, opts?: { fileMustExist?: boolean; readonly?: boolean }) => SqliteHandle;

const requireFromCell = createRequire(join(REPO_ROOT, 'packages', 'cell', 'package.json'));
const Sqlite = requireFromCell('better-sqlite3') as SqliteConstructor;

/** Opens the cell's database file (which must exist) alongside the running cell; WAL lets both work. */
export function openCellDb(dataDir: string): SqliteHandle {
  const db = new Sqlite(join(dataDir, 'cell.db'), { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Runs `fn` with the cell's database open, closing it afterwards. */
export function withCellDb<T>(dataDir: string, fn: (db: SqliteHandle) => T): T {
  const db = openCellDb(dataDir);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The cell's own password hashing (scrypt), from its build output, so a test-made hash is one the cell accepts. */
export async function hashPassword(password: string): Promise<string> {
  const url = pathToFileURL(join(REPO_ROOT, 'packages', 'cell', 'dist', 'lib', 'password.js')).href;
  const mod = (await import(url)) as { hashPassword(password: string): Promise<string> };
  return mod.hashPassword(password);
}

/**
 * Inserts a user straight into `users` (columns as in migrations/0001_core.ts).
 *
 * Why not through the API: this issue has no endpoint that creates a peer-role user (peers arrive
 * with the peers feature), yet role denial must be tested both ways now. Writing the row the way the
 * cell itself would (same table, same scrypt hash format) is the smallest honest stand-in.
 */
export async function insertUser(
  dataDir: string,
  user: { username: string; password: string; role: 'admin' | 'peer'; disabled?: boolean },
): Promise<number> {
  const hash = await hashPassword(user.password);
  const now = new Date().toISOString();
  return withCellDb(dataDir, (db) => {
    const res = db
      .prepare(
        `INSERT INTO users (username, role, password_hash, must_change_password, disabled, created_at, updated_at, password_changed_at)
         VALUES (?, ?, ?, 0, ?, ?, ?, ?)`,
      )
      .run(user.username, user.role, hash, user.disabled ? 1 : 0, now, now, now);
    return Number(res.lastInsertRowid);
  });
}

/** The key the session store uses for a cookie's session id (it stores only this hash). */
export const sessionIdHash = (cookieValue: string): string => createHash('sha256').update(cookieValue).digest('hex');
