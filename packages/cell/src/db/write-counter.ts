import { type FSWatcher, watch } from 'node:fs';
import type SQLite from 'better-sqlite3';
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryId,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';

/**
 * Counts the writes that go through kysely, so an in-memory copy of database rows (the signed-in
 * account of each session) can tell it may be out of date without asking the database.
 *
 * Anything that is not a SELECT counts (INSERT, UPDATE, DELETE, raw SQL, DDL): a new write path
 * cannot forget to invalidate. The count moves twice: when the query is compiled, and again when
 * it has run. A reader that captured the count before loading rows keeps them only if it has not
 * moved meanwhile, so a write that overtakes a load in the connection queue, or rolls back while
 * a load waits behind its transaction, leaves no stale copy behind.
 *
 * Commits by another connection to the same file (an admin with the sqlite3 shell, a restore
 * script) count too. In WAL mode every commit appends to the `-wal` file, so a watch on it (inotify)
 * moves the count before the event loop reads the next request: the kernel queues the event
 * during the other process's write, ahead of any request sent after that write. As a backstop
 * (a file system without change events), SQLite's `PRAGMA data_version` is read at most every
 * EXTERNAL_CHECK_MS; it is not read on every call because it takes a shared-memory lock each
 * time (~1.5 µs, several times the rest of a cached lookup).
 */
export class WriteCounter implements KyselyPlugin {
  static readonly EXTERNAL_CHECK_MS = 250;

  #value = 0;
  readonly #pending = new WeakSet<QueryId>();
  readonly #dataVersion: SQLite.Statement<[], number> | undefined;
  #lastDataVersion = -1;
  #checkedAt = -Infinity;
  #watcher: FSWatcher | undefined;

  constructor(
    sqlite?: SQLite.Database,
    private readonly now: () => number = Date.now,
  ) {
    this.#dataVersion = sqlite?.prepare<[], number>('PRAGMA data_version').pluck();
    if (sqlite && !sqlite.memory && this.#dataVersion) {
      this.#lastDataVersion = this.#dataVersion.get()!; // a first read: it creates the -wal file of a new database
      try {
        // Our own commits move it too: harmless, they have counted already.
        this.#watcher = watch(`${sqlite.name}-wal`, { persistent: false }, () => {
          this.#value++;
        });
        this.#watcher.on('error', () => this.close());
      } catch {
        this.#watcher = undefined; // no WAL file or no watches left: the pragma alone, as above
      }
    }
  }

  /** Stops watching the WAL file (when the database closes). */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Changes whenever a write here has been compiled or has finished, or another connection committed. */
  get value(): number {
    if (this.#dataVersion) {
      const now = this.now();
      if (now - this.#checkedAt >= WriteCounter.EXTERNAL_CHECK_MS) {
        this.#checkedAt = now;
        const version = this.#dataVersion.get()!;
        if (version !== this.#lastDataVersion) {
          this.#lastDataVersion = version;
          this.#value++;
        }
      }
    }
    return this.#value;
  }

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (node.kind !== 'SelectQueryNode') {
      this.#value++;
      this.#pending.add(queryId);
    }
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.#pending.delete(queryId)) this.#value++;
    return result;
  }
}
