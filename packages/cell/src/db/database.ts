import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type SqliteDatabase } from 'kysely';
import type { Database } from './schema.js';
import { migrationProvider } from './migrations/index.js';
import { WriteCounter } from './write-counter.js';

export type Db = Kysely<Database>;

export interface CellDatabase {
  db: Db;
  /** The raw handle, for pragmas and the health probe. */
  sqlite: SQLite.Database;
  /** Moves on every write through `db`: in-memory copies of rows check it before they are trusted. */
  writes: WriteCounter;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * kysely prepares every query anew; preparing is a large share of a point query's cost here.
 * Queries come from a fixed set of builders, so their SQL texts repeat: keep the prepared
 * statements, bounded (texts with variable-length IN lists would otherwise grow it forever).
 */
function withStatementCache(sqlite: SQLite.Database, max = 500): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(sqlText: string) {
      let stmt = cache.get(sqlText);
      if (stmt) {
        // refresh recency: Map iteration order is insertion order
        cache.delete(sqlText);
      } else {
        stmt = sqlite.prepare(sqlText);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
      }
      cache.set(sqlText, stmt);
      return stmt as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}

/** Opens (creating if needed) the cell's SQLite file: WAL, foreign keys, busy timeout. */
export function openDatabase(file: string): CellDatabase {
  // The database holds password and session hashes: owner-only, like the vault key beside it.
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  const writes = new WriteCounter(sqlite);
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(sqlite) }),
    plugins: [writes],
  });
  let closed = false;
  return {
    db,
    sqlite,
    writes,
    async migrate() {
      // Plain code-unit order for names like 0006_peers_user_id, the same whatever the machine's
      // locale (kysely's default is localeCompare).
      const migrator = new Migrator({
        db,
        provider: migrationProvider,
        nameComparator: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
      });
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    async close() {
      if (closed) return;
      closed = true;
      writes.close();
      await db.destroy(); // closes the better-sqlite3 handle too
    },
  };
}
