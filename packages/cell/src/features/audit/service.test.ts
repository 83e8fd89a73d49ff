import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import type { CellDatabase } from '../../db/database.js';
import { AuditLog, type AuditEntryInput } from './service.js';

const entry = (action: string, details?: Record<string, unknown>): AuditEntryInput => ({
  actor: 'admin',
  action,
  result: 'ok',
  ip: '127.0.0.1',
  details,
});

describe('AuditLog on a real SQLite file', () => {
  let database: CellDatabase;
  let temp: TempDatabase;
  let log: AuditLog;
  before(async () => {
    temp = await openTempDatabase('pic-audit-');
    ({ database } = temp);
    log = new AuditLog(database.db, database.sqlite);
  });
  after(async () => {
    await temp.remove();
  });

  it('starts empty and valid, then chains appends from the genesis hash', async () => {
    assert.deepEqual(await log.verify(), { valid: true, entries: 0, head_id: 0, archived_through_id: 0 });
    const first = await log.append(entry('a.one'));
    const second = await log.append(entry('a.two', { n: 2 }));
    assert.equal(first.id, 1);
    assert.equal(first.prev_hash, '0'.repeat(64));
    assert.equal(second.prev_hash, first.hash);
    const v = await log.verify();
    assert.equal(v.valid, true);
    assert.equal(v.entries, 2);
    const row = await database.db
      .selectFrom('audit_log')
      .select(['action', 'details', 'actor'])
      .where('id', '=', 2)
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { action: 'a.two', details: '{"n":2}', actor: 'admin' });
  });

  it('an entry appended inside a transaction that rolls back disappears with it', async () => {
    const before = (await log.verify()).entries;
    await assert.rejects(
      database.db.transaction().execute(async (trx) => {
        log.appendIn(trx, entry('rolled.back'));
        throw new Error('handler failed');
      }),
      /handler failed/,
    );
    const v = await log.verify();
    assert.equal(v.valid, true, 'the head moved back with the rollback');
    assert.equal(v.entries, before);
  });

  it('a standalone append waits for an open transaction instead of joining it', async () => {
    const before = (await log.verify()).entries;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const trxDone = database.db.transaction().execute(async (trx) => {
      log.appendIn(trx, entry('in.trx'));
      await gate;
      throw new Error('roll back');
    });
    const standalone = log.append(entry('standalone'));
    await new Promise((r) => setTimeout(r, 20));
    release();
    await assert.rejects(trxDone);
    const appended = await standalone;
    assert.equal(appended.id, before + 1, 'the standalone entry took the next id after the rollback');
    const v = await log.verify();
    assert.equal(v.valid, true);
    assert.equal(v.entries, before + 1);
  });

  it('verifies across batch boundaries', async () => {
    for (let i = 0; i < 25; i++) await log.append(entry('batch', { i }));
    const v = await log.verify(7);
    assert.equal(v.valid, true);
  });
});
