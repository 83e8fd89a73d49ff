import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ping, startDockerEngine, type DockerEngine, type DockerEngineOptions } from './docker-engine.js';

// These tests start their own daemons in their own directories, on their own bridges, so they
// neither need nor disturb the shared test engine other test files use at the same time.
const canRun =
  process.getuid?.() === 0 &&
  ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'].some((p) => existsSync(p));
const skip = canRun ? false : 'needs root and dockerd (scripts/system/docker.mjs installs docker.io)';
if (skip) process.stderr.write(`\n*** SKIPPING the test engine lifecycle tests: ${skip}\n\n`);

const dirs: string[] = [];
function tempDir(parent: string, prefix: string): string {
  const d = mkdtempSync(join(parent, prefix));
  dirs.push(d);
  return d;
}
function bridgeExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('startDockerEngine: one daemon shared by the run', () => {
  if (skip) {
    it('needs root and dockerd', { skip }, () => {}); // counted in the run's "skipped" total
    return;
  }
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the first user starts it, later users (also in other processes) reuse it, the last stop() ends it', async () => {
    const options: DockerEngineOptions = {
      runDir: tempDir('/run', 'pic-engine-test-'),
      stateDir: tempDir('/var/tmp', 'pic-engine-test-'),
      network: { bridge: 'pic-test1', bridgeAddress: '10.223.0.1/24', addressPool: 'base=10.224.0.0/16,size=24' },
      log: () => {},
    };
    const first = (await startDockerEngine(options)) as DockerEngine;
    assert.ok(!('skip' in first), JSON.stringify(first));
    let second: DockerEngine | undefined;
    try {
      assert.equal(first.started, true);
      assert.equal(first.dockerHost, `unix://${first.socketPath}`);
      assert.equal(await ping(first.socketPath), true);
      assert.equal(bridgeExists('pic-test1'), true);

      second = (await startDockerEngine(options)) as DockerEngine;
      assert.equal(second.started, false, 'reused');
      assert.equal(second.socketPath, first.socketPath);

      // Another process joins and ends without calling stop(): its exit hook unregisters it.
      const moduleUrl = pathToFileURL(join(import.meta.dirname, 'docker-engine.js')).href;
      const script = `const { startDockerEngine } = await import(${JSON.stringify(moduleUrl)});
        const e = await startDockerEngine(${JSON.stringify({ ...options, log: undefined })});
        process.stdout.write(JSON.stringify({ started: e.started, skip: e.skip }));`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0);
      assert.deepEqual(JSON.parse(out), { started: false });
      const users = join(options.runDir!, 'users');
      assert.equal(readdirSync(users).length, 2, 'the child unregistered itself on exit');

      // A user whose process died without any hook (SIGKILL) is pruned, not waited for.
      writeFileSync(join(users, `${child.pid}-1-dead00`), `${child.pid}\n`);

      await first.stop();
      await first.stop(); // idempotent
      assert.equal(await ping(first.socketPath), true, 'still used by the second user');

      await second.stop();
      assert.equal(await ping(first.socketPath), false, 'the last user stopped it');
      assert.deepEqual(readdirSync(users), []);
      assert.equal(bridgeExists('pic-test1'), false, 'its bridge is removed');
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  it('a daemon that cannot start gives a skip reason with its log tail', async () => {
    const result = await startDockerEngine({
      runDir: tempDir('/run', 'pic-engine-test-'),
      stateDir: tempDir('/var/tmp', 'pic-engine-test-'),
      network: { bridge: 'pic-test2', bridgeAddress: '10.225.0.1/24', addressPool: 'base=not-a-network,size=24' },
      log: () => {},
      startTimeoutMs: 20_000,
    });
    assert.ok('skip' in result, 'no engine');
    assert.match(result.skip, /dockerd exited with \d+ during start-up; log tail/);
    assert.match(result.skip, /not-a-network|invalid/i);
    assert.equal(bridgeExists('pic-test2'), false, 'the bridge made for it is removed again');
  });
});
