import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DetachedProcess, processCommandLine, type DetachedSpec } from './detached-process.js';
import { silentLogger } from './logger.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in helper: `sleep` with a marker argument (sleep accepts several durations and adds them). */
function spec(dir: string, converged: string[]): DetachedSpec {
  const mark = `${Math.floor(Math.random() * 1e6) + 100000}`;
  return {
    name: 'sleeper',
    command: 'sleep',
    args: ['300', mark],
    ownerMark: mark,
    pidFile: join(dir, 'sleeper.pid'),
    logFile: join(dir, 'sleeper.log'),
    ready: async () => undefined,
    converge: async () => void converged.push('converge'),
  };
}

describe('DetachedProcess', () => {
  it('starts a detached process that outlives stop(), and a second owner adopts it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-detached-'));
    const converged: string[] = [];
    const s = spec(dir, converged);
    const first = new DetachedProcess(s, silentLogger, 100);
    try {
      await first.start();
      const pid = first.state().pid!;
      assert.equal(first.state().adopted, false);
      assert.equal(Number(readFileSync(s.pidFile, 'utf8')), pid);
      await first.stop();
      assert.ok(processCommandLine(pid), 'still running after stop()');

      const second = new DetachedProcess(s, silentLogger, 100);
      await second.start();
      assert.equal(second.state().pid, pid, 'adopted, not started again');
      assert.equal(second.state().adopted, true);
      assert.deepEqual(converged, ['converge', 'converge'], 'converged after start and after adoption');

      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 40 && second.state().restarts === 0; i++) await sleep(50);
      assert.equal(second.state().restarts, 1, 'restarted after SIGKILL');
      assert.notEqual(second.state().pid, pid);
      assert.equal(second.state().running, true);
      await second.stop(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not adopt a pid whose command line lacks its mark (a recycled pid, another owner)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-detached-'));
    const s = spec(dir, []);
    writeFileSync(s.pidFile, `${process.pid}\n`); // alive, but this test runner, not ours
    const p = new DetachedProcess(s, silentLogger, 100);
    try {
      await p.start();
      assert.notEqual(p.state().pid, process.pid);
      assert.equal(p.state().adopted, false);
    } finally {
      await p.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
