import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirInUseError, DataDirLock } from './data-dir-lock.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('DataDirLock (one cell per data dir)', () => {
  it('a second holder is refused at once, named by pid, until the first lets go', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-lock-'));
    dirs.push(dir);
    const first = new DataDirLock(dir);
    first.start();
    assert.equal(readFileSync(join(dir, 'cell.pid'), 'utf8').trim(), String(process.pid));

    const second = new DataDirLock(dir);
    const started = Date.now();
    assert.throws(
      () => second.start(),
      (err: unknown) =>
        err instanceof DataDirInUseError &&
        err.holderPid === process.pid &&
        /already running on the data dir .* \(pid \d+\): stop it first/.test(err.message),
    );
    assert.ok(Date.now() - started < 1_000, 'no waiting on the lock');

    first.stop();
    assert.ok(!existsSync(join(dir, 'cell.pid')));
    second.start();
    assert.throws(() => new DataDirLock(dir).start(), DataDirInUseError);
    second.stop();
    second.stop(); // twice is harmless
  });
});
