import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import type { CellDatabase } from '../../db/database.js';
import { AuditLog } from './service.js';
import { ARCHIVE_DIR, archiveEntriesBefore, verifyArchives, type FileCipher } from './archive.js';

// A stand-in for the vault inside this unit test only (the e2e test archives through the real vault):
// reversible, and it makes the file unreadable as plain text so the test can tell it was applied.
const xorCipher: FileCipher = {
  async encryptBytes(data) {
    return Uint8Array.from(data, (b) => b ^ 0x5a);
  },
  async decryptBytes(data) {
    return Uint8Array.from(data, (b) => b ^ 0x5a);
  },
};

describe('audit archiving (retention)', () => {
  let dir: string;
  let database: CellDatabase;
  let temp: TempDatabase;
  let log: AuditLog;
  before(async () => {
    temp = await openTempDatabase('pic-archive-');
    ({ dir, database } = temp);
    log = new AuditLog(database.db, database.sqlite);
  });
  after(async () => {
    await temp.remove();
  });

  const archive = (beforeIso: string) =>
    database.db.transaction().execute((trx) => archiveEntriesBefore(trx, xorCipher, dir, beforeIso));

  it('moves old entries into an encrypted file and the live chain still verifies from the anchor', async () => {
    for (let i = 0; i < 10; i++) await log.append({ actor: 'admin', action: 'old', result: 'ok', details: { i } });
    await new Promise((r) => setTimeout(r, 5));
    const cutoff = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 5; i++) await log.append({ actor: 'admin', action: 'new', result: 'ok', details: { i } });

    const res = await archive(cutoff);
    assert.deepEqual(
      { archived: res.archived, first: res.first_id, last: res.last_id },
      { archived: 10, first: 1, last: 10 },
    );
    const files = readdirSync(join(dir, ARCHIVE_DIR));
    assert.deepEqual(files, [res.file]);
    assert.ok(
      !readFileSync(join(dir, ARCHIVE_DIR, res.file!))
        .toString()
        .includes('"actor"'),
      'the archive is not plain text',
    );

    const v = await log.verify();
    assert.deepEqual(v, { valid: true, entries: 5, head_id: 15, archived_through_id: 10 });
    assert.deepEqual(await verifyArchives(database.db, xorCipher, dir), { valid: true, archives: 1, entries: 10 });
    assert.equal((await archive(cutoff)).archived, 0, 'archiving the same range again does nothing');

    await log.append({ actor: 'admin', action: 'after', result: 'ok' });
    assert.equal((await log.verify()).valid, true, 'appends continue the chain after archiving');
  });

  it('chains a second archive onto the first', async () => {
    const res = await archive(new Date(Date.now() + 1000).toISOString());
    assert.equal(res.first_id, 11);
    assert.equal((await log.verify()).entries, 0);
    assert.deepEqual(await verifyArchives(database.db, xorCipher, dir), { valid: true, archives: 2, entries: 16 });
  });

  it('detects an archive file that was changed or removed', async () => {
    const [first] = readdirSync(join(dir, ARCHIVE_DIR)).sort();
    const path = join(dir, ARCHIVE_DIR, first!);
    const original = readFileSync(path);
    const changed = Buffer.from(original);
    changed[10] = changed[10]! ^ 1;
    writeFileSync(path, changed);
    const bad = await verifyArchives(database.db, xorCipher, dir);
    assert.equal(bad.valid, false);
    assert.match((bad as { reason: string }).reason, /changed/);
    rmSync(path);
    assert.match(((await verifyArchives(database.db, xorCipher, dir)) as { reason: string }).reason, /missing/);
    writeFileSync(path, original);
    assert.equal((await verifyArchives(database.db, xorCipher, dir)).valid, true);
  });

  it('retention archives what is older than retention_days, and records that it did', async () => {
    const { AuditRetention } = await import('./retention.js');
    const { silentLogger } = await import('../../lib/logger.js');
    const off = new AuditRetention(database.db, log, xorCipher, dir, null, silentLogger);
    assert.equal(await off.runOnce(), 0, 'no retention setting, nothing archived');
    await log.append({ actor: 'admin', action: 'kept', result: 'ok' });
    const retention = new AuditRetention(database.db, log, xorCipher, dir, 30, silentLogger);
    assert.equal(await retention.runOnce(Date.now()), 0, 'nothing is 30 days old yet');
    const archived = await retention.runOnce(Date.now() + 31 * 86_400_000);
    assert.ok(archived >= 1);
    const rows = database.sqlite.prepare('SELECT action, actor FROM audit_log').all() as Array<{
      action: string;
      actor: string;
    }>;
    assert.deepEqual(rows, [{ action: 'audit.archive', actor: 'system' }]);
    assert.equal((await log.verify()).valid, true);
    assert.equal((await verifyArchives(database.db, xorCipher, dir)).valid, true);
  });

  it('refuses to archive a broken chain and changes nothing', async () => {
    for (let i = 0; i < 3; i++) await log.append({ actor: 'admin', action: 'x', result: 'ok' });
    assert.equal((await log.verify()).valid, true);
    const countRows = () => (database.sqlite.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
    const before = countRows();
    database.sqlite
      .prepare(
        `UPDATE audit_log SET entry = replace(entry, '"result":"ok"', '"result":"denied"') WHERE id = (SELECT min(id) FROM audit_log)`,
      )
      .run();
    assert.equal((await log.verify()).valid, false, 'the tamper took');
    await assert.rejects(archive(new Date(Date.now() + 1000).toISOString()), /broken/);
    assert.equal(countRows(), before, 'nothing was deleted');
  });
});
