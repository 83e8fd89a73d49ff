import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, ADMIN, completeSetup } from '../support/client.js';
import { openCellDb } from '../support/db.js';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

describe('audit log (real cell process)', () => {
  let cell: CellProcess;
  let api: ApiClient;
  before(async () => {
    cell = await startCellProcess();
    api = new ApiClient(cell.url);
    await completeSetup(api);
    // A few more writes: a good one, a refused one, a failed login, an anonymous denial.
    assert.equal((await api.put('/api/config', { identity: { domain: 'audit.example.org' } })).status, 200);
    assert.equal((await api.put('/api/config', { identity: { domain: 'NOT A DOMAIN' } })).status, 400);
    assert.equal(
      (await api.put('/api/config', { identity: { domain: 'x.example.org' } }, { csrf: false })).status,
      403,
    );
    assert.equal(
      (await new ApiClient(cell.url).post('/api/auth/login', { username: 'admin', password: 'wrong password!' }))
        .status,
      401,
    );
    assert.equal((await new ApiClient(cell.url).post('/api/auth/change-password', {})).status, 401);
  });
  after(async () => cell.destroy());

  it('records every write, denied and failed ones too, newest first with a total', async () => {
    const res = await api.get('/api/audit?limit=100');
    assert.equal(res.status, 200);
    const entries = res.body.entries as Array<Record<string, any>>;
    assert.equal(res.body.total, entries.length);
    assert.ok(entries.length >= 10, `expected ≥10 entries, got ${entries.length}`);
    assert.ok(entries[0]!.id > entries[1]!.id, 'newest first');
    const actions = entries.map((e) => `${e.action}:${e.result}`);
    for (const expected of [
      'setup.step:ok',
      'setup.complete:ok',
      'config.update:ok',
      'config.update:error',
      'config.update:denied',
      'auth.login:denied',
    ]) {
      assert.ok(actions.includes(expected), `missing ${expected} in ${actions.join(', ')}`);
    }
    const csrfDenied = entries.find((e) => e.action === 'config.update' && e.result === 'denied')!;
    assert.equal(csrfDenied.details.error, 'csrf');
    assert.equal(csrfDenied.actor, 'admin');
    const anonymous = entries.find((e) => e.actor === 'anonymous');
    assert.ok(anonymous, 'a write without a session is recorded as anonymous');
    // never a password in the log, not even a wrong one
    assert.ok(!res.text.includes(ADMIN.password) && !res.text.includes('wrong password!'));
  });

  it('filters by actor, action, result and time, and validates the filters', async () => {
    const denied = await api.get('/api/audit?result=denied');
    assert.ok(denied.body.entries.length >= 2);
    assert.ok(denied.body.entries.every((e: any) => e.result === 'denied'));
    const byAction = await api.get('/api/audit?action=config.update&actor=admin');
    assert.ok(byAction.body.entries.every((e: any) => e.action === 'config.update' && e.actor === 'admin'));
    assert.equal(byAction.body.total, byAction.body.entries.length);
    const future = await api.get('/api/audit?since=2999-01-01T00:00:00Z');
    assert.equal(future.body.total, 0);
    const past = await api.get('/api/audit?until=2000-01-01T00:00:00%2B02:00');
    assert.equal(past.body.total, 0);
    const page = await api.get('/api/audit?limit=2&offset=1');
    assert.equal(page.body.entries.length, 2);
    for (const bad of ['since=yesterday', 'result=maybe', 'limit=0', 'limit=abc', 'bogus=1']) {
      const res = await api.get(`/api/audit?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(res.body.ok, false);
      assert.ok(Object.keys(res.body.fields).length > 0, `fields named for ${bad}`);
    }
  });

  it('exports RFC 4180 CSV and JSON, streamed', async () => {
    const csv = await api.get('/api/audit/export?format=csv');
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    assert.match(csv.headers.get('content-disposition')!, /attachment; filename="audit-.*\.csv"/);
    const lines = csv.text.split('\r\n').filter(Boolean);
    assert.equal(lines[0], 'id,ts,actor,action,target_type,target_id,result,ip,details,prev_hash,hash');
    const total = (await api.get('/api/audit?limit=1')).body.total;
    assert.equal(lines.length, total + 1, 'one line per entry plus the header, CRLF-terminated');
    assert.ok(
      lines.some((l) => l.includes('"{""changed"":[""identity.domain""]}"')),
      'quotes doubled inside quoted fields',
    );
    const json = await api.get('/api/audit/export?format=json');
    assert.equal(json.status, 200);
    assert.equal(json.body.length, total);
    assert.equal(json.body[0].id, 1, 'oldest first');
    assert.equal((await api.get('/api/audit/export?format=xml')).status, 400);
  });

  it('verifies the chain, and detects edited, removed, reordered and truncated entries', async () => {
    const good = await api.get('/api/audit/verify');
    assert.equal(good.status, 200);
    assert.equal(good.body.valid, true);
    const n = good.body.entries as number;
    assert.ok(n >= 10);

    const db = openCellDb(cell.dataDir);
    try {
      // Each tamper runs in a transaction we roll back after asking the cell, so cases stay independent.
      const tamper = async (sql: string[], expect: { id: number; reason: RegExp }) => {
        db.exec('BEGIN IMMEDIATE');
        for (const s of sql) db.exec(s);
        db.exec('COMMIT');
        const res = await api.get('/api/audit/verify');
        assert.equal(res.status, 200);
        assert.equal(res.body.valid, false, `tamper not detected: ${sql.join('; ')}`);
        assert.equal(res.body.first_broken_id, expect.id, JSON.stringify(res.body));
        assert.match(res.body.reason, expect.reason);
      };
      const snapshot = db.prepare('SELECT id, entry, prev_hash, hash FROM audit_log ORDER BY id').all() as Array<
        Record<string, unknown>
      >;
      const restore = () => {
        db.exec('BEGIN IMMEDIATE; DELETE FROM audit_log;');
        const insert = db.prepare(
          'INSERT INTO audit_log (id, entry, prev_hash, hash) VALUES (@id, @entry, @prev_hash, @hash)',
        );
        for (const row of snapshot) insert.run(row);
        db.exec('COMMIT');
      };

      // The queryable columns are generated from `entry`: they cannot be edited on their own.
      assert.throws(() => db.exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = 3`), /generated column/);
      await tamper(
        [`UPDATE audit_log SET entry = replace(entry, '"actor":"admin"', '"actor":"mallory"') WHERE id = 3`],
        { id: 3, reason: /edited/ },
      );
      restore();
      await tamper([`UPDATE audit_log SET entry = json_set(entry, '$.details', json('{"changed":[]}')) WHERE id = 6`], {
        id: 6,
        reason: /edited/,
      });
      restore();
      // even re-hashing an edited entry does not help: the next entry's prev_hash no longer matches
      await tamper(
        [
          `UPDATE audit_log SET entry = replace(entry, '"result":"ok"', '"result":"denied"'), hash = '${'f'.repeat(64)}' WHERE id = 2`,
        ],
        { id: 2, reason: /edited/ },
      );
      restore();
      await tamper([`DELETE FROM audit_log WHERE id = 4`], { id: 4, reason: /missing/ });
      restore();
      // swap the contents of entries 5 and 6, keeping their ids in place
      await tamper(
        [
          'UPDATE audit_log SET id = -5 WHERE id = 5',
          'UPDATE audit_log SET id = 5 WHERE id = 6',
          'UPDATE audit_log SET id = 6 WHERE id = -5',
        ],
        { id: 5, reason: /prev_hash|edited/ },
      );
      restore();
      await tamper([`DELETE FROM audit_log WHERE id = ${n}`], { id: n, reason: /newest entries removed/ });
      restore();
      const again = await api.get('/api/audit/verify');
      assert.equal(again.body.valid, true, 'restored rows verify again');
    } finally {
      db.close();
    }
  });

  it('archives old entries into an encrypted file; the live chain and the archives still verify', async () => {
    const before = (await api.get('/api/audit?limit=1')).body;
    const cut = new Date().toISOString();
    const res = await api.post('/api/audit/archive', { before: cut });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.first_id, 1);
    assert.ok(res.body.archived >= before.total, `archived ${res.body.archived} of ${before.total}`);
    const file = join(cell.dataDir, 'audit-archive', res.body.file);
    const bytes = readFileSync(file);
    assert.ok(bytes.subarray(0, 40).toString('latin1').startsWith('age-encryption.org/v1'), 'an age file');
    assert.ok(!bytes.toString('latin1').includes('"actor"'), 'no plaintext entry in the archive');
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const live = await api.get('/api/audit/verify');
    assert.equal(live.body.valid, true, JSON.stringify(live.body));
    assert.equal(live.body.archived_through_id, res.body.last_id);
    const all = await api.get('/api/audit/verify?archives=true');
    assert.equal(all.body.valid, true, JSON.stringify(all.body));
    assert.equal(all.body.archives.entries, res.body.archived);
    // the archive request itself is the first live entry after the anchor
    const newest = (await api.get('/api/audit?limit=5')).body.entries;
    assert.ok(newest.some((e: any) => e.action === 'audit.archive' && e.result === 'ok'));
    assert.equal((await api.post('/api/audit/archive', { before: 'last week' })).status, 400);

    const saved = readFileSync(file);
    rmSync(file);
    const missing = await api.get('/api/audit/verify?archives=true');
    assert.equal(missing.body.valid, false);
    assert.match(missing.body.archives.reason, /missing/);
    writeFileSync(file, saved, { mode: 0o600 });
    assert.equal((await api.get('/api/audit/verify?archives=true')).body.valid, true);
  });

  it('is admin-only and read-only: there is no way to write to it', async () => {
    assert.equal((await new ApiClient(cell.url).get('/api/audit')).status, 401);
    const del = await api.delete('/api/audit');
    assert.ok([404, 405].includes(del.status), `DELETE /api/audit → ${del.status}`);
  });
});
