import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type CellDatabase } from './database.js';

/** For tests: a migrated cell database in a fresh temp dir; `remove()` closes it and deletes the dir. */
export interface TempDatabase {
  dir: string;
  database: CellDatabase;
  remove(): Promise<void>;
}

export async function openTempDatabase(prefix = 'pic-test-'): Promise<TempDatabase> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const database = openDatabase(join(dir, 'cell.db'));
  await database.migrate();
  return {
    dir,
    database,
    async remove() {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once the event loop has polled for I/O again (an immediate set now runs before that
 * poll, one set from it after): where the cell reads its next request.
 */
export const nextPollForIo = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
