import { createHash } from 'node:crypto';
import { mkdirSync, openSync, fsyncSync, closeSync, writeFileSync, renameSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import { nowIso } from '../../lib/tokens.js';
import { ChainWalker, GENESIS_HASH, type ChainProblem, type ChainRow } from './service.js';

/** Whole-file encryption to the cell's own age identity (the vault provides it). */
export interface FileCipher {
  encryptBytes(data: Uint8Array): Promise<Uint8Array>;
  decryptBytes(data: Uint8Array): Promise<Uint8Array>;
}

export const ARCHIVE_DIR = 'audit-archive';

export interface ArchiveResult {
  archived: number;
  first_id?: number;
  last_id?: number;
  file?: string;
}

/** Writes a file so that it is either wholly there or not at all (temp file, fsync, rename, fsync dir). */
function writeFileDurably(dir: string, name: string, data: Uint8Array): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, data, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, join(dir, name));
  const dirFd = openSync(dir, 'r');
  fsyncSync(dirFd);
  closeSync(dirFd);
}

/**
 * Moves the entries older than `before` out of the live table into an age-encrypted JSONL file,
 * inside `trx`. The last archived hash becomes the anchor the live chain starts from, so verify
 * keeps passing; the archive's own links are checked first, and a broken chain is never archived.
 * A crash before commit leaves at most an orphan file that the next archive of that range replaces.
 */
export async function archiveEntriesBefore(
  trx: Transaction<Database>,
  cipher: FileCipher,
  dataDir: string,
  before: string,
): Promise<ArchiveResult> {
  const cutoff = new Date(before).toISOString();
  const chain = await trx.selectFrom('audit_chain').selectAll().where('id', '=', 1).executeTakeFirstOrThrow();
  const last = await trx
    .selectFrom('audit_log')
    .select((eb) => eb.fn.max('id').as('id'))
    .where('ts', '<', cutoff)
    .executeTakeFirst();
  const lastId = last?.id ?? null;
  if (lastId === null || lastId <= chain.archived_through_id) return { archived: 0 };

  const rows = await trx
    .selectFrom('audit_log')
    .select(['id', 'entry', 'prev_hash', 'hash'])
    .where('id', '<=', lastId)
    .orderBy('id')
    .execute();
  const walker = new ChainWalker(chain.archived_through_id + 1, chain.archived_last_hash);
  const problem = walker.check(rows.map((r) => [r.id, r.entry, r.prev_hash, r.hash] as ChainRow));
  if (problem) {
    throw errors.conflict(
      `the audit chain is broken at entry ${problem.first_broken_id} (${problem.reason}); nothing was archived`,
    );
  }

  const firstId = rows[0]!.id;
  const lines = `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
  const ciphertext = await cipher.encryptBytes(new TextEncoder().encode(lines));
  const file = `audit-${String(firstId).padStart(10, '0')}-${String(lastId).padStart(10, '0')}.jsonl.age`;
  writeFileDurably(join(dataDir, ARCHIVE_DIR), file, ciphertext);

  await trx
    .insertInto('audit_archives')
    .values({
      file,
      first_id: firstId,
      last_id: lastId,
      first_prev_hash: rows[0]!.prev_hash,
      last_hash: walker.prevHash,
      entries: rows.length,
      sha256: createHash('sha256').update(ciphertext).digest('hex'),
      created_at: nowIso(),
    })
    .execute();
  await trx.deleteFrom('audit_log').where('id', '<=', lastId).execute();
  await trx
    .updateTable('audit_chain')
    .set({ archived_through_id: lastId, archived_last_hash: walker.prevHash, updated_at: nowIso() })
    .where('id', '=', 1)
    .execute();
  return { archived: rows.length, first_id: firstId, last_id: lastId, file };
}

export type ArchiveCheck =
  | { valid: true; archives: number; entries: number }
  | ({ valid: false; archives: number; file: string } & ChainProblem);

/**
 * Checks every archive file: its digest, that it decrypts, that its entries chain from the
 * previous archive (the first from the genesis hash), and that the last one ends where the
 * live table's anchor says.
 */
export async function verifyArchives(db: Kysely<Database>, cipher: FileCipher, dataDir: string): Promise<ArchiveCheck> {
  const archives = await db.selectFrom('audit_archives').selectAll().orderBy('first_id').execute();
  const chain = await db
    .selectFrom('audit_chain')
    .select(['archived_through_id', 'archived_last_hash'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  const walker = new ChainWalker(1, GENESIS_HASH);
  for (const archive of archives) {
    const fail = (reason: string, id = archive.first_id) => ({
      valid: false as const,
      archives: archives.length,
      file: archive.file,
      first_broken_id: id,
      reason,
    });
    let ciphertext: Buffer;
    try {
      ciphertext = readFileSync(join(dataDir, ARCHIVE_DIR, archive.file));
    } catch {
      return fail('the archive file is missing');
    }
    if (createHash('sha256').update(ciphertext).digest('hex') !== archive.sha256)
      return fail('the archive file was changed');
    let text: string;
    try {
      text = new TextDecoder().decode(await cipher.decryptBytes(ciphertext));
    } catch {
      return fail('the archive file does not decrypt with the cell identity');
    }
    const rows = text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const r = JSON.parse(line) as { id: number; entry: string; prev_hash: string; hash: string };
        return [r.id, r.entry, r.prev_hash, r.hash] as ChainRow;
      });
    const problem = walker.check(rows);
    if (problem) return { valid: false, archives: archives.length, file: archive.file, ...problem };
    if (walker.expectedId - 1 !== archive.last_id || walker.prevHash !== archive.last_hash) {
      return fail('the archive does not end where its record says', archive.last_id);
    }
  }
  if (walker.expectedId - 1 !== chain.archived_through_id || walker.prevHash !== chain.archived_last_hash) {
    return {
      valid: false,
      archives: archives.length,
      file: archives.at(-1)?.file ?? '',
      first_broken_id: walker.expectedId,
      reason: 'the archives do not reach the live chain anchor',
    };
  }
  return { valid: true, archives: archives.length, entries: walker.entries };
}
