import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { startCell, type Cell } from '../../cell.js';
import { loadConfig } from '../../config.js';
import { silentLogger } from '../../lib/logger.js';
/** /health's answer while the database is unavailable: the one error shape, nothing of its internals. */
const DOWN = { ok: false, status: 'down', error: 'database unavailable', code: 'unavailable', fields: {} };

/** GET /health of the real app, built and listening through startCell (port 0, temp data dir). */
describe('GET /health', () => {
  let dir: string;
  let cell: Cell;
  const health = async () => {
    const res = await fetch(`${cell.url}/health`);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Record<string, unknown> };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pic-health-'));
    cell = await startCell(loadConfig({ PIC_PORT: '0', PIC_HOST: '127.0.0.1', PIC_DATA_DIR: dir }), silentLogger);
  });
  after(async () => {
    await cell?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 {ok:true,status:"ok"} while the database works, uncached', async () => {
    const r = await health();
    assert.equal(r.status, 200);
    assert.equal(r.body['ok'], true);
    assert.equal(r.body['status'], 'ok');
    assert.equal(r.body['setup_complete'], false);
    assert.equal(typeof r.body['version'], 'string');
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });

  it('answers 503 in the error shape when the table it probes is gone, and 200 again once it is back', async () => {
    // A second connection to the same file changes the schema under the running cell.
    const other = new SQLite(cell.deps.config.dbFile);
    try {
      other.prepare('ALTER TABLE settings RENAME TO settings_elsewhere').run();
      const r = await health();
      assert.equal(r.status, 503);
      assert.deepEqual(r.body, DOWN);
      assert.ok(!/settings|no such table|SQLITE/i.test(r.text), 'no database internals in a public answer');
      assert.equal(r.headers.get('cache-control'), 'no-store');
    } finally {
      other.prepare('ALTER TABLE settings_elsewhere RENAME TO settings').run();
      other.close();
    }
    assert.equal((await health()).status, 200);
  });

  it('answers 503 when the database handle is closed, and keeps answering (no crash)', async () => {
    cell.database.sqlite.close();
    for (let i = 0; i < 3; i++) {
      const r = await health();
      assert.equal(r.status, 503);
      assert.deepEqual(r.body, DOWN);
    }
  });
});
