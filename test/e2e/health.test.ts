import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup, type ApiResponse } from '../support/client.js';
import { withCellDb } from '../support/db.js';
import { assertError } from '../support/expect.js';

const KEEP = 2;

describe('/health, setup status and health history (real cell process)', () => {
  let cell: CellProcess;
  let admin: ApiClient;
  const anon = () => new ApiClient(cell.url);
  const sampleIds = () =>
    withCellDb(
      cell.dataDir,
      (db) =>
        db.prepare('SELECT count(*) AS n, max(id) AS last FROM health_checks').get() as { n: number; last: number },
    );

  before(async () => {
    // Sample every second and keep only KEEP samples, so the periodic part is observable quickly.
    cell = await startCellProcess({ cellYaml: `health:\n  interval_seconds: 1\n  keep: ${KEEP}\n` });
    admin = new ApiClient(cell.url);
  });
  after(async () => cell.destroy());

  function assertHealthy(res: ApiResponse, setupComplete: boolean): void {
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.setup_complete, setupComplete);
    assert.equal(typeof res.body.version, 'string');
    assert.equal(typeof res.body.uptime_s, 'number');
    // Public, so it says nothing private.
    assert.deepEqual(Object.keys(res.body).sort(), ['ok', 'setup_complete', 'status', 'uptime_s', 'version']);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.getSetCookie().length, 0, 'no session is started');
  }

  it('before setup: /health and GET /api/setup/status are public', async () => {
    assertHealthy(await anon().get('/health'), false);
    const status = await anon().get('/api/setup/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.complete, false);
    assert.equal(status.body.step, 'admin');
    // The rest of /api is closed until setup completes.
    assertError(await anon().get('/api/health/history'), 403, { code: 'setup_incomplete' });
    assert.equal(status.headers.getSetCookie().length, 0);
  });

  it('after setup: /health stays public; the setup status needs a session', async () => {
    await completeSetup(admin);
    assertHealthy(await anon().get('/health'), true);
    assertHealthy(await admin.get('/health'), true);
    assertError(await anon().get('/api/setup/status'), 401, { code: 'unauthorized' });
    const status = await admin.get('/api/setup/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.complete, true);
    assert.equal(status.body.step, null);
    assert.match(status.body.completed_at, /^\d{4}-\d{2}-\d{2}T/);
  });

  it('GET /api/health/history returns the stored samples, newest first (admin only)', async () => {
    // Wait for the monitor to have taken more samples than it keeps.
    const deadline = Date.now() + 5000;
    while (sampleIds().last <= KEEP && Date.now() < deadline) await sleep(100);
    const stored = sampleIds();
    assert.ok(stored.last > KEEP, `periodic samples were taken (${stored.last})`);
    assert.ok(stored.n <= KEEP, `only the newest ${KEEP} are kept (${stored.n})`);

    const res = await admin.get('/api/health/history');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.interval_s, 1);
    assert.ok(res.body.total >= 1 && res.body.total <= KEEP);
    assert.equal(res.body.samples.length, res.body.total);
    for (const sample of res.body.samples) {
      assert.match(sample.ts, /^\d{4}-\d{2}-\d{2}T/);
      assert.ok(['ok', 'degraded', 'down'].includes(sample.status));
      assert.equal(typeof sample.duration_ms, 'number');
      assert.equal(sample.checks.database.ok, true);
      assert.equal(typeof sample.checks.disk.ok, 'boolean');
    }
    const times = res.body.samples.map((s: { ts: string }) => s.ts);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    // What the API returns is what is stored.
    const rows = withCellDb(cell.dataDir, (db) => db.prepare('SELECT ts FROM health_checks ORDER BY id DESC').all());
    assert.deepEqual(rows.map((r: { ts: string }) => r.ts).slice(0, times.length), times);

    const one = await admin.get('/api/health/history?limit=1');
    assert.equal(one.body.samples.length, 1);
    assert.equal(one.body.limit, 1);
    assertError(await anon().get('/api/health/history'), 401, { code: 'unauthorized' });
  });

  it('/health answers 503 with the error shape while the database is unusable, and recovers', async () => {
    // Break what the health probe reads (the settings table) underneath the running cell, then mend it.
    withCellDb(cell.dataDir, (db) => db.prepare('ALTER TABLE settings RENAME TO settings_moved').run());
    let broken: ApiResponse;
    try {
      broken = await anon().get('/health');
    } finally {
      withCellDb(cell.dataDir, (db) => db.prepare('ALTER TABLE settings_moved RENAME TO settings').run());
    }
    assert.equal(broken.status, 503, broken.text);
    assert.equal(broken.body.ok, false);
    assert.equal(broken.body.status, 'down');
    assert.equal(typeof broken.body.error, 'string');
    assert.ok(!/settings_moved|no such table/.test(broken.text), 'no database internals in the public answer');
    assertHealthy(await anon().get('/health'), true);
  });
});
