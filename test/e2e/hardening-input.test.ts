import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { parse as parseCsv } from 'csv-parse/sync';
import type { ApiClient } from '../support/client.js';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';
import { openCellDb } from '../support/db.js';
import { assertError } from '../support/expect.js';

const LEAP_SECOND = '2030-12-31T23:59:60Z';

/**
 * GET an export and stop reading after its first chunk; `rest()` reads on and says whether the
 * answer ended whole or was cut.
 */
function exportPaused(
  url: string,
  format: string,
  cookie: string,
): Promise<{ status: number; rest(): Promise<'whole' | 'cut'> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/api/audit/export?format=${format}`, { headers: { cookie } }, (res) => {
      res.once('data', () => {
        res.pause();
        const rest = () =>
          new Promise<'whole' | 'cut'>((done) => {
            res.on('data', () => {});
            res.once('end', () => done(res.complete ? 'whole' : 'cut'));
            res.once('error', () => done('cut'));
            res.once('aborted', () => done('cut'));
            res.resume();
          });
        // Long enough for the server to fill the socket buffers and stop at a page boundary.
        setTimeout(() => resolve({ status: res.statusCode ?? 0, rest }), 500);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The hardening review's inputs (issue 9) against a real cell process: each once crashed it or gave a 500. */
describe('hardening: date-times, integers, CSV, the archive (real cell process)', () => {
  let ready: ReadyCell;
  let admin: ApiClient;

  before(async () => {
    ready = await startReadyCell();
    admin = ready.admin;
  });
  after(async () => ready.cell.destroy());

  const alive = async (context: string) => {
    assert.equal(
      ready.cell.child.exitCode,
      null,
      `the cell is still running after ${context}:\n${ready.cell.output()}`,
    );
    assert.equal((await admin.get('/api/status')).status, 200, `the cell answers after ${context}`);
  };

  it('a leap second (or a lowercase t/z) is a 400 in every date-time field', async () => {
    const q = encodeURIComponent(LEAP_SECOND);
    for (const path of [
      `/api/audit?since=${q}`,
      `/api/audit?until=${q}`,
      `/api/audit/export?format=csv&until=${q}`,
      `/api/audit/export?format=json&until=${q}`,
      `/api/audit/export?format=csv&since=${q}`,
      '/api/audit?since=2026-01-01t00:00:00z',
    ]) {
      const field = /[?&](since|until)=/.exec(path)![1]!;
      assertError(await admin.get(path), 400, { code: 'validation_failed', fields: [field], context: path });
      await alive(path);
    }
    assertError(await admin.post('/api/peers', { name: 'leap', expires_at: LEAP_SECOND }), 400, {
      code: 'validation_failed',
      fields: ['expires_at'],
      context: 'POST /api/peers',
    });
    const created = await admin.post('/api/peers', { name: 'leap' });
    assert.equal(created.status, 201, created.text);
    assertError(await admin.put('/api/peers/leap', { expires_at: LEAP_SECOND }), 400, {
      fields: ['expires_at'],
      context: 'PUT',
    });
    assertError(await admin.put('/api/peers/leap', { expires_at: '2031-01-01t00:00:00Z' }), 400, {
      fields: ['expires_at'],
    });
    assertError(await admin.post('/api/audit/archive', { before: LEAP_SECOND }), 400, {
      fields: ['before'],
      context: 'archive',
    });
    assertError(await admin.post('/api/audit/archive', { before: '2020-01-01T00:00:00z' }), 400, {
      fields: ['before'],
    });
    await alive('every date-time field');
  });

  it('POST /api/audit/archive with `before` in the future → 400, nothing archived', async () => {
    const total = (await admin.get('/api/audit?limit=1')).body.total as number;
    const res = await admin.post('/api/audit/archive', { before: '2030-01-01T00:00:00Z' });
    assertError(res, 400, { code: 'validation_failed', fields: ['before'] });
    assert.match(res.body.fields.before, /future/);
    assert.ok(
      (await admin.get('/api/audit?limit=1')).body.total > total,
      'nothing was archived (and the refusal was audited)',
    );
    const past = await admin.post('/api/audit/archive', { before: '2000-01-01T00:00:00Z' });
    assert.equal(past.status, 200, past.text);
  });

  it('a failure in the middle of a streamed export ends that response, never the process', async () => {
    // The export reads 1000 entries a page, as the client takes them. With far more entries than the
    // socket buffers hold, the client stops reading after the first bytes; the table is then renamed
    // away, so the next page's query fails in the middle of the answer. Before stream.pipeline, the
    // CSV export's unhandled stream error ended the cell. The copied rows are removed afterwards.
    const db = openCellDb(ready.cell.dataDir);
    const last = db.prepare('SELECT id, entry, prev_hash, hash FROM audit_log ORDER BY id DESC LIMIT 1').get();
    const insert = db.prepare('INSERT INTO audit_log (id, entry, prev_hash, hash) VALUES (?, ?, ?, ?)');
    db.exec('BEGIN');
    for (let i = 1; i <= 100_000; i++) insert.run(last.id + i, last.entry, last.prev_hash, last.hash);
    db.exec('COMMIT');
    try {
      for (const format of ['csv', 'json']) {
        const res = await exportPaused(ready.cell.url, format, admin.cookieHeader());
        assert.equal(res.status, 200, 'the answer had begun');
        db.exec('ALTER TABLE audit_log RENAME TO audit_log_away');
        try {
          const outcome = await res.rest();
          assert.equal(outcome, 'cut', `the ${format} export is cut, not completed as if whole`);
        } finally {
          db.exec('ALTER TABLE audit_log_away RENAME TO audit_log');
        }
        await alive(`a ${format} export failing mid-stream`);
      }
    } finally {
      db.prepare('DELETE FROM audit_log WHERE id > ?').run(last.id);
      db.close();
    }
    assert.equal((await admin.get('/api/audit/export?format=csv')).status, 200);
    assert.equal((await admin.get('/api/audit/verify')).body.valid, true, 'the chain is as it was');
  });

  it('integers past the maximum or the safe range are a 400 on every paginated list', async () => {
    for (const path of ['/api/peers', '/api/audit', '/api/auth/users', '/api/health/history']) {
      for (const query of [
        'offset=99999999999999999999',
        'offset=9007199254740993',
        'limit=9007199254740993',
        'offset=-9007199254740993',
      ]) {
        const field = query.split('=')[0]!;
        assertError(await admin.get(`${path}?${query}`), 400, {
          code: 'validation_failed',
          fields: [field],
          context: `${path}?${query}`,
        });
      }
      const largest = await admin.get(`${path}?offset=9007199254740991`);
      assert.equal(largest.status, 200, `the largest safe offset is fine on ${path}: ${largest.text}`);
    }
  });

  it('CSV export: a username with a newline cannot start a record or a formula', async () => {
    const evil = "\n=cmd|' /C calc'!A0";
    assert.equal(
      (await ready.anon().post('/api/auth/login', { username: evil, password: 'not the password' })).status,
      401,
    );
    assert.equal(
      (await ready.anon().post('/api/auth/login', { username: '\r+1+1', password: 'not the password' })).status,
      401,
    );
    assert.equal(
      (await ready.anon().post('/api/auth/login', { username: '@SUM(A1)', password: 'not the password' })).status,
      401,
    );
    const res = await admin.get('/api/audit/export?format=csv');
    assert.equal(res.status, 200);
    const records = parseCsv(res.text, { record_delimiter: '\r\n' }) as string[][];
    const header = records[0]!;
    assert.equal(header.length, 11);
    for (const record of records) {
      assert.equal(record.length, header.length, `every record has every column: ${JSON.stringify(record)}`);
      for (const field of record) {
        assert.ok(!/^[=+\-@\t\r]/.test(field), `no field starts with a formula character: ${JSON.stringify(field)}`);
      }
    }
    const actors = records.map((r) => r[header.indexOf('actor')]);
    assert.ok(actors.includes(evil), `the attempted username is one field, kept whole: ${JSON.stringify(actors)}`);
    assert.ok(
      actors.includes("'\r+1+1") && actors.includes("'@SUM(A1)"),
      'formulas are neutralised with a leading quote',
    );
  });
});

describe('hardening: every refused write leaves a trace (real cell process, trust_proxy)', () => {
  let ready: ReadyCell;
  let admin: ApiClient;

  before(async () => {
    ready = await startReadyCell({ cellYaml: 'trust_proxy: true\n' });
    admin = ready.admin;
  });
  after(async () => ready.cell.destroy());

  const newest = async (action: string) => {
    const res = await admin.get(`/api/audit?action=${encodeURIComponent(action)}&limit=1`);
    assert.equal(res.status, 200, res.text);
    return res.body.entries[0] as Record<string, any> | undefined;
  };

  it('a lone surrogate in a login name or a store id is audited, as well-formed text', async () => {
    const login = await ready.anon().request('POST', '/api/auth/login', {
      rawBody: '{"username":"admin0\\ud800","password":"not the password"}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(login.status, 401, login.text);
    const entry = await newest('auth.login');
    assert.equal(entry?.actor, 'admin0\ufffd', `the refused login is recorded: ${JSON.stringify(entry)}`);
    assert.equal(entry?.result, 'denied');

    const install = await admin.request('POST', '/api/store/install', {
      rawBody: '{"id":"\\udfff"}',
      headers: { 'content-type': 'application/json' },
    });
    assertError(install, 400, { context: 'install of a lone surrogate id' });
    const refused = await newest('store.install');
    assert.equal(refused?.target_id, '\ufffd', `the refused install is recorded: ${JSON.stringify(refused)}`);
    assert.equal(refused?.result, 'error');
    assert.equal(refused?.details.error, 'validation_failed');
    assert.equal((await admin.get('/api/audit/verify')).body.valid, true, 'the chain verifies');
  });

  it('a 413 is audited as payload_too_large', async () => {
    const big = JSON.stringify({ identity: { cell_name: 'x'.repeat(1024 * 1024 + 16) } });
    const res = await admin.request('PUT', '/api/config', {
      rawBody: big,
      headers: { 'content-type': 'application/json' },
    });
    assertError(res, 413, { code: 'payload_too_large' });
    const entry = await newest('config.update');
    assert.equal(entry?.details.status, 413);
    assert.equal(entry?.details.error, 'payload_too_large', JSON.stringify(entry));
  });

  it('with trust_proxy, the audited ip is a parsed address, never the raw X-Forwarded-For text', async () => {
    const cases: Array<[string, string]> = [
      ['203.0.113.9', '203.0.113.9'],
      ['198.51.100.1, 2001:db8::7', '2001:db8::7'],
      ['<script>alert(1)</script>', '127.0.0.1'],
      ['203.0.113.9:4444', '127.0.0.1'],
      ['x'.repeat(4000), '127.0.0.1'],
      ['198.51.100.1, not-an-address', '127.0.0.1'],
    ];
    for (const [forwarded, expected] of cases) {
      const res = await ready.anon().post(
        '/api/auth/login',
        { username: 'nobody', password: 'not the password' },
        {
          headers: { 'x-forwarded-for': forwarded },
        },
      );
      assert.equal(res.status, 401, res.text);
      const entry = await newest('auth.login');
      assert.equal(entry?.ip, expected, `X-Forwarded-For ${forwarded.slice(0, 40)} → ${entry?.ip}`);
    }
  });
});
