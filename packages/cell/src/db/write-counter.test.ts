import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { nextPollForIo, openTempDatabase, type TempDatabase } from './temp-database.test-support.js';
import { WriteCounter } from './write-counter.js';

describe('WriteCounter (kysely plugin) on a real SQLite file', () => {
  let temp: TempDatabase;
  before(async () => {
    temp = await openTempDatabase('pic-writes-');
  });
  after(async () => temp.remove());

  it('moves on every kind of write through kysely, and not on reads', async () => {
    const { db, writes } = temp.database;
    let seen = writes.value;
    const moved = () => {
      const changed = writes.value !== seen;
      seen = writes.value;
      return changed;
    };
    await db.selectFrom('users').select('id').execute();
    assert.equal(moved(), false, 'a SELECT');
    await db
      .insertInto('settings')
      .values({ key: 'wc-test', value: '"1"', updated_at: new Date().toISOString() })
      .execute();
    assert.equal(moved(), true, 'an INSERT');
    await db.updateTable('settings').set({ value: '"2"' }).where('key', '=', 'wc-test').execute();
    assert.equal(moved(), true, 'an UPDATE');
    await db.deleteFrom('settings').where('key', '=', 'wc-test').execute();
    assert.equal(moved(), true, 'a DELETE');
    await sql`UPDATE settings SET value = value WHERE key = 'none'`.execute(db);
    assert.equal(moved(), true, 'raw SQL counts as a write');
    await db.transaction().execute(async (trx) => {
      await trx.selectFrom('settings').select('key').execute();
    });
    assert.equal(moved(), false, 'a transaction that only reads');
  });

  it('moves again once the write has run, so a load that overlapped it is not kept', async () => {
    const { db, writes } = temp.database;
    const before = writes.value;
    const pending = db.updateTable('settings').set({ value: '"3"' }).where('key', '=', 'none').execute();
    const compiled = writes.value;
    assert.notEqual(compiled, before, 'counted when compiled');
    await pending;
    assert.notEqual(writes.value, compiled, 'and again when done');
  });

  it("moves on another connection's commit before the next turn of the event loop (a watch on the WAL)", async () => {
    const now = 1_000_000; // the clock stands still: the pragma is never read again
    const file = join(temp.dir, 'cell.db');
    const own = new SQLite(file);
    own.pragma('journal_mode = WAL');
    const other = new SQLite(file);
    const writes = new WriteCounter(own, () => now);
    try {
      const first = writes.value;
      other.prepare("INSERT INTO settings (key, value, updated_at) VALUES ('watched', '1', 'x')").run();
      assert.equal(writes.value, first, 'the event is read in the next poll for I/O, with any request');
      await nextPollForIo();
      assert.notEqual(writes.value, first);
    } finally {
      writes.close();
      own.close();
      other.close();
    }
  });

  it("notices another connection's commit within EXTERNAL_CHECK_MS, without reading the pragma on every call", async () => {
    let now = 1_000_000;
    const file = join(temp.dir, 'cell.db');
    const own = new SQLite(file);
    const other = new SQLite(file);
    const writes = new WriteCounter(own, () => now);
    writes.close(); // the pragma alone, as on a file system without change events
    try {
      const first = writes.value;
      other.prepare("INSERT INTO settings (key, value, updated_at) VALUES ('external', '1', 'x')").run();
      assert.equal(writes.value, first, 'not yet: checked less than EXTERNAL_CHECK_MS ago');
      now += WriteCounter.EXTERNAL_CHECK_MS;
      assert.notEqual(writes.value, first, 'seen once the interval has passed');
      const second = writes.value;
      now += WriteCounter.EXTERNAL_CHECK_MS;
      assert.equal(writes.value, second, 'no commit since: unchanged');
    } finally {
      own.close();
      other.close();
    }
  });
});
