import type { Kysely, Transaction } from 'kysely';
import type SQLite from 'better-sqlite3';
import type { Database } from '../../db/schema.js';
import type { Db } from '../../db/database.js';
import { nowIso } from '../../lib/tokens.js';
import { canonicalEntry, chainHash, entryIdOf, GENESIS_HASH, wellFormed, type ChainEntry } from './chain.js';

export type AuditResult = 'ok' | 'denied' | 'error';

export interface AuditEntryInput {
  actor: string;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  result: AuditResult;
  ip?: string | null;
  /** Names and ids only, never secrets. */
  details?: Record<string, unknown>;
}

export interface AuditRow {
  id: number;
  entry: string;
  prev_hash: string;
  hash: string;
}

export type VerifyResult =
  | { valid: true; entries: number; head_id: number; archived_through_id: number }
  | { valid: false; entries: number; first_broken_id: number; reason: string };

/**
 * The hash-chained audit log. Appends use prepared statements on the raw SQLite handle, which is
 * the same connection kysely uses: `appendIn(trx, …)` is therefore part of the caller's
 * transaction (and must only be called while that transaction is open), and `append(…)` takes the
 * connection through kysely first so it can never land inside somebody else's transaction.
 */
export class AuditLog {
  private readonly readHead: SQLite.Statement;
  private readonly insertEntry: SQLite.Statement;
  private readonly moveHead: SQLite.Statement;

  constructor(
    private readonly db: Db,
    private readonly sqlite: SQLite.Database,
  ) {
    this.readHead = sqlite.prepare('SELECT head_id, head_hash FROM audit_chain WHERE id = 1');
    this.insertEntry = sqlite.prepare(
      'INSERT INTO audit_log (id, entry, prev_hash, hash) VALUES (@id, @entry, @prev_hash, @hash)',
    );
    this.moveHead = sqlite.prepare('UPDATE audit_chain SET head_id = ?, head_hash = ?, updated_at = ? WHERE id = 1');
  }

  /** Appends inside the caller's open transaction: it commits or rolls back with the change it records. */
  appendIn(_trx: Transaction<Database>, input: AuditEntryInput): AuditRow {
    return this.write(input);
  }

  /** Appends on its own (denied and failed requests, whose own transaction rolled back). */
  async append(input: AuditEntryInput): Promise<AuditRow> {
    return this.db.connection().execute(async () => this.sqlite.transaction(() => this.write(input))());
  }

  private write(input: AuditEntryInput): AuditRow {
    const head = this.readHead.get() as { head_id: number; head_hash: string } | undefined;
    if (!head) throw new Error('audit_chain row is missing; the database was not migrated');
    const entry: ChainEntry = {
      id: head.head_id + 1,
      ts: nowIso(),
      actor: input.actor,
      action: input.action,
      target_type: input.targetType ?? null,
      target_id: input.targetId ?? null,
      result: input.result,
      ip: input.ip ?? null,
      details: input.details ?? {},
    };
    const text = canonicalOrWellFormed(entry);
    const row: AuditRow = {
      id: entry.id,
      entry: text,
      prev_hash: head.head_hash,
      hash: chainHash(head.head_hash, text),
    };
    this.insertEntry.run(row);
    this.moveHead.run(row.id, row.hash, entry.ts);
    return row;
  }

  /**
   * Recomputes the chain from the archive anchor to the recorded head, in batches so the server
   * keeps answering. Detects edited entries (hash), removed or reordered ones (ids and prev_hash),
   * and removed newest entries (the head recorded in audit_chain).
   */
  async verify(batchSize = 20_000): Promise<VerifyResult> {
    const chain = await this.db
      .selectFrom('audit_chain')
      .select(['archived_through_id', 'archived_last_hash', 'head_id', 'head_hash'])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    const page = this.sqlite
      .prepare('SELECT id, entry, prev_hash, hash FROM audit_log WHERE id > ? AND id <= ? ORDER BY id LIMIT ?')
      .raw(true);
    const walker = new ChainWalker(chain.archived_through_id + 1, chain.archived_last_hash);
    for (;;) {
      const rows = page.all(walker.expectedId - 1, chain.head_id, batchSize) as ChainRow[];
      const problem = walker.check(rows);
      if (problem) return { valid: false, entries: walker.entries, ...problem };
      if (rows.length < batchSize) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const problem = walker.end(chain.head_id, chain.head_hash);
    if (problem) return { valid: false, entries: walker.entries, ...problem };
    return {
      valid: true,
      entries: walker.entries,
      head_id: chain.head_id,
      archived_through_id: chain.archived_through_id,
    };
  }
}

/**
 * The entry's canonical JSON. Whatever bytes the request carried (a lone surrogate in an attempted
 * username or a target id from the body), the entry is written: if canonicalize refuses it, the
 * well-formed copy is (lone surrogates as U+FFFD). The common case pays for no copy.
 */
function canonicalOrWellFormed(entry: ChainEntry): string {
  try {
    return canonicalEntry(entry);
  } catch {
    return canonicalEntry(wellFormed(entry) as ChainEntry);
  }
}

/** A stored row as verify reads it: [id, entry, prev_hash, hash]. */
export type ChainRow = [number, string, string, string];
export type ChainProblem = { first_broken_id: number; reason: string };

/**
 * Walks rows in id order from an anchor (the id and hash expected next), checking each link.
 * Shared by verify (the live table), archiving (the range it moves out) and archive checks.
 */
export class ChainWalker {
  entries = 0;

  constructor(
    public expectedId: number,
    public prevHash: string,
  ) {}

  check(rows: Iterable<ChainRow>): ChainProblem | undefined {
    for (const [id, entry, prev_hash, hash] of rows) {
      if (id !== this.expectedId) {
        const reason =
          id > this.expectedId ? `entry ${this.expectedId} is missing (removed)` : `entry ${id} is out of order`;
        return { first_broken_id: this.expectedId, reason };
      }
      if (prev_hash !== this.prevHash) {
        return {
          first_broken_id: id,
          reason: 'prev_hash does not match the previous entry (removed or reordered entries)',
        };
      }
      if (chainHash(this.prevHash, entry) !== hash)
        return { first_broken_id: id, reason: "hash does not match the entry's contents (edited)" };
      if (entryIdOf(entry) !== id) return { first_broken_id: id, reason: 'the entry was moved to another id' };
      this.prevHash = hash;
      this.expectedId++;
      this.entries++;
    }
    return undefined;
  }

  /** The walk must end exactly at the recorded head. */
  end(headId: number, headHash: string): ChainProblem | undefined {
    if (this.expectedId - 1 === headId && this.prevHash === headHash) return undefined;
    return {
      first_broken_id: this.expectedId,
      reason: `the chain ends at entry ${this.expectedId - 1} but its recorded head is entry ${headId} (newest entries removed)`,
    };
  }
}

export { GENESIS_HASH };
export type AuditDb = Kysely<Database>;
