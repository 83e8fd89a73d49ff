import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  exitedWithOutput,
  runCellExpectingFailure,
  startCellProcess,
  type CellProcess,
} from '../support/cell-process.js';
import { ApiClient, ADMIN, IDENTITY, NETWORK, completeSetup } from '../support/client.js';
import { insertUser } from '../support/db.js';

describe('restart on the same data dir (real cell processes)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pic-e2e-restart-'));
  const running: CellProcess[] = [];
  after(async () => {
    for (const cell of running) await cell.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('setup, users, sessions and config survive a clean SIGTERM and a new process', async () => {
    const first = await startCellProcess({ dataDir });
    running.push(first);
    const admin = new ApiClient(first.url);
    await completeSetup(admin);
    const renamed = await admin.put('/api/config', { identity: { cell_name: 'before-restart' } });
    assert.equal(renamed.status, 200, renamed.text);
    await insertUser(dataDir, { username: 'pat', password: 'peer password 1234', role: 'peer' });
    const peer = new ApiClient(first.url);
    assert.equal((await peer.login('pat', 'peer password 1234')).status, 200);
    const history = await admin.get('/api/health/history');
    const samplesBefore: number = history.body.total;
    assert.ok(samplesBefore >= 1);

    const code = await first.stop();
    assert.equal(code, 0, `a clean exit on SIGTERM:\n${first.output()}`);
    assert.match(first.output(), /"msg":"stopping".*"signal":"SIGTERM"/);
    assert.ok(!existsSync(join(dataDir, 'cell.db-wal')), 'the database was closed (its WAL checkpointed and removed)');
    assert.ok(existsSync(join(dataDir, 'cell.db')));

    const second = await startCellProcess({ dataDir });
    running.push(second);
    assert.notEqual(second.url, first.url, 'a new process on a new port');
    assert.doesNotMatch(second.output(), /migrations applied/, 'nothing left to migrate');

    // The old cookies and CSRF token, sent to the new process.
    const oldAdmin = admin.clone(second.url);
    const oldPeer = peer.clone(second.url);

    const status = await oldAdmin.get('/api/setup/status');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.complete, true, 'setup is still complete');
    assert.equal((await new ApiClient(second.url).get('/api/setup/status')).status, 401, 'and so no longer public');
    assert.equal(
      (await new ApiClient(second.url).post('/api/setup/step', ADMIN)).status,
      409,
      'the wizard stays closed',
    );

    const me = await oldAdmin.get('/api/auth/me');
    assert.equal(me.status, 200, `the old session cookie still works: ${me.text}`);
    assert.equal(me.body.user.username, 'admin');
    assert.equal((await oldPeer.get('/api/auth/me')).body.user?.role, 'peer', "the peer's session too");

    const config = await oldAdmin.get('/api/config');
    assert.equal(config.body.config.identity.cell_name, 'before-restart');
    assert.equal(config.body.config.identity.domain, IDENTITY.domain);
    assert.equal(config.body.config.network.subnet, NETWORK.subnet);
    assert.equal(config.body.config.network.wireguard_port, NETWORK.wireguard_port);
    const write = await oldAdmin.put('/api/config', { identity: { cell_name: 'after-restart' } });
    assert.equal(write.status, 200, `the session's CSRF token persisted too: ${write.text}`);

    const fresh = new ApiClient(second.url);
    assert.equal((await fresh.login(ADMIN.username, ADMIN.password)).status, 200, 'the admin can sign in');
    const users = await fresh.get('/api/auth/users');
    assert.deepEqual(
      users.body.users.map((u: { username: string }) => u.username),
      ['admin', 'pat'],
    );
    const after = await fresh.get('/api/health/history');
    assert.ok(after.body.total > samplesBefore, 'stored health samples are kept and a new one is added at start');

    // A logout after the restart really ends the old session.
    await oldAdmin.post('/api/auth/logout');
    assert.equal((await oldAdmin.get('/api/auth/me')).status, 401);
    assert.equal(await second.stop(), 0);
  });

  it('a Ctrl-C that arrives twice (from the terminal and from npm start) still closes the database', async () => {
    const cell = await startCellProcess();
    running.push(cell);
    const admin = new ApiClient(cell.url);
    await completeSetup(admin); // writes: the WAL has something to fold back
    assert.ok(existsSync(join(cell.dataDir, 'cell.db-wal')));
    const exited = exitedWithOutput(cell.child);
    cell.child.kill('SIGINT');
    // the second copy once the first has started the shutdown (copies that arrive together merge)
    while (!/"msg":"stopping"/.test(cell.output())) await new Promise((resolve) => setTimeout(resolve, 1));
    cell.child.kill('SIGINT');
    assert.equal(await exited, 0, `a clean exit:\n${cell.output()}`);
    assert.equal(cell.output().match(/"msg":"stopping"/g)?.length, 1, 'one shutdown, the second signal ignored');
    assert.ok(!existsSync(join(cell.dataDir, 'cell.db-wal')), 'the database was closed');
    await cell.destroy();
  });

  it('SIGHUP (a closed terminal) stops the cell as cleanly as SIGTERM', async () => {
    const cell = await startCellProcess();
    running.push(cell);
    await completeSetup(new ApiClient(cell.url)); // writes: the WAL has something to fold back
    assert.ok(existsSync(join(cell.dataDir, 'cell.db-wal')));
    const exited = exitedWithOutput(cell.child);
    cell.child.kill('SIGHUP');
    assert.equal(await exited, 0, `a clean exit, not death by signal:\n${cell.output()}`);
    assert.match(cell.output(), /"msg":"stopping","signal":"SIGHUP"/);
    assert.ok(!existsSync(join(cell.dataDir, 'cell.db-wal')), 'the database was closed');
    await cell.destroy();
  });

  it('one cell per data dir: a second refuses at once and names the first; a killed cell leaves no stale lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-e2e-lock-'));
    try {
      const first = await startCellProcess({ dataDir: dir });
      running.push(first);
      const admin = new ApiClient(first.url);
      await completeSetup(admin);

      const second = await runCellExpectingFailure({ dataDir: dir });
      assert.equal(second.code, 1, second.output);
      assert.match(
        second.output,
        new RegExp(`another cell is already running on the data dir .* \\(pid ${first.child.pid}\\): stop it first`),
      );
      assert.doesNotMatch(second.output, /migrations applied|cell listening/, 'it stopped before touching anything');
      // the first one did not notice
      assert.equal((await admin.get('/api/auth/me')).status, 200);

      // SIGKILL: no clean-up runs, yet the next cell starts (the kernel dropped the lock with the process)
      const killed = new Promise((resolve) => first.child.once('exit', resolve));
      first.child.kill('SIGKILL');
      await killed;
      const third = await startCellProcess({ dataDir: dir });
      running.push(third);
      assert.equal((await new ApiClient(third.url).get('/health')).status, 200);
      assert.equal(await third.stop(), 0);
      assert.ok(!existsSync(join(dir, 'cell.pid')), 'a clean stop removes the pid note');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
