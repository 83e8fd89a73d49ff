import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DockerRuntime } from './docker-runtime.js';
import {
  EngineUnreachableError,
  ExecTimeoutError,
  ImageDigestMismatchError,
  ImageMissingError,
  InvalidSpecError,
  NameConflictError,
  NotFoundError,
  NotOwnedError,
} from './errors.js';
import { LABEL_CELL, LABEL_SERVICE, type ContainerInfo } from './types.js';
import {
  buildTestEchoImage,
  removeCellObjects,
  startDockerEngine,
  TEST_ECHO_IMAGE,
  type DockerEngine,
} from './testing/index.js';

const engineStart = await startDockerEngine();
const skip = 'skip' in engineStart ? `no container engine here: ${engineStart.skip}` : false;
if (skip) process.stderr.write(`\n*** SKIPPING the DockerRuntime engine tests: ${skip}\n\n`);

const suffix = randomBytes(4).toString('hex');
const CELL = `test-${suffix}`;
const name = (what: string) => `pic-rt-${suffix}-${what}`;

/** Polls an HTTP URL until it answers 200 (the server inside needs a moment after start). */
/**
 * GET with retries until the service answers. node:http, not fetch: right after start, docker-proxy
 * accepts and then drops connections, and a fetch body cut off that way has been seen to leave its
 * promise pending with nothing keeping the event loop alive. Here every way a request can end —
 * response end, error, close, timeout — settles the promise.
 */
async function httpGet(
  url: string,
  init: { headers?: Record<string, string> } = {},
  timeoutMs = 10_000,
): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const req = request(url, { headers: init.headers, timeout: 5_000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
          res.on('close', () => reject(new Error('response closed before its end')));
        });
        req.on('timeout', () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

function hostPort(info: ContainerInfo, containerPort: number): number {
  const p = info.ports.find((x) => x.containerPort === containerPort && x.hostIp === '127.0.0.1');
  assert.ok(p, `port ${containerPort} is published on 127.0.0.1: ${JSON.stringify(info.ports)}`);
  return p.hostPort;
}

describe('DockerRuntime against a real Docker engine', () => {
  if (skip) {
    it('needs a container engine', { skip }, () => {}); // counted in the run's "skipped" total
    return;
  }
  let engine: DockerEngine;
  let runtime: DockerRuntime;
  let digest: string;
  const foreign: string[] = []; // unlabelled objects made behind the runtime's back, removed in after()

  before(async () => {
    engine = engineStart as DockerEngine;
    runtime = new DockerRuntime({ cellId: CELL, socket: engine.socketPath });
    const cached = (await runtime.inspectImage(TEST_ECHO_IMAGE)) !== undefined;
    const started = Date.now();
    digest = await buildTestEchoImage(runtime);
    process.stderr.write(
      `[runtime test] ${TEST_ECHO_IMAGE}: ${cached ? 'checked (cached)' : 'built and loaded (uncached)'} in ${Date.now() - started} ms\n`,
    );
  });

  after(async () => {
    if (!runtime) return;
    await removeCellObjects(runtime);
    for (const id of foreign) {
      await runtime.docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => {});
      await runtime.docker
        .getNetwork(id)
        .remove()
        .catch(() => {});
      await runtime.docker
        .getVolume(id)
        .remove()
        .catch(() => {});
    }
    await engine.stop();
  });

  it('pings the engine and reports its version', async () => {
    await runtime.ping();
    const v = await runtime.version();
    assert.match(v.apiVersion, /^1\.\d+$/);
    assert.equal(v.os, 'linux');
    assert.equal(runtime.endpoint, `unix://${engine.socketPath}`);
  });

  it('pins the image ID: imageDigest, ensureImage with and without the right digest, missing images', async () => {
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await runtime.imageDigest(TEST_ECHO_IMAGE), digest);
    // The digest itself is a reference the engine resolves.
    assert.equal(await runtime.imageDigest(digest), digest);
    const info = await runtime.ensureImage(TEST_ECHO_IMAGE, { digest });
    assert.deepEqual(info.repoTags, [TEST_ECHO_IMAGE]);
    assert.deepEqual(info.repoDigests, [], 'a loaded image has no registry digest; the image ID is what is pinned');

    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(runtime.ensureImage(TEST_ECHO_IMAGE, { digest: wrong }), (err) => {
      assert.ok(err instanceof ImageDigestMismatchError);
      assert.equal(err.code, 'image_digest_mismatch');
      assert.equal(err.actual, digest);
      return true;
    });
    await assert.rejects(
      runtime.ensureImage('pic-no-such-image:0'),
      (err) => err instanceof ImageMissingError && err.code === 'image_missing',
    );
    await assert.rejects(runtime.imageDigest('pic-no-such-image:0'), ImageMissingError);
    assert.equal(await runtime.inspectImage('pic-no-such-image:0'), undefined);
    await assert.rejects(
      runtime.createContainer({ name: name('noimage'), service: 'x', image: 'pic-no-such-image:0' }),
      (err) => {
        assert.ok(err instanceof ImageMissingError, String(err));
        assert.match(err.message, /pic-no-such-image:0/);
        return true;
      },
    );
  });

  it('runs the test service: labels, published port, HTTP, exec, volume, logs, stop, remove', async () => {
    const net = await runtime.createNetwork({ name: name('net'), service: 'test-echo' });
    assert.equal(net.created, true);
    assert.equal(
      (await runtime.createNetwork({ name: name('net'), service: 'test-echo' })).created,
      false,
      'idempotent',
    );
    const vol = await runtime.createVolume({ name: name('data'), service: 'test-echo' });
    assert.equal(vol.created, true);
    assert.equal(vol.labels[LABEL_CELL], CELL);

    const created = await runtime.createContainer({
      name: name('echo'),
      service: 'test-echo',
      image: digest,
      env: { PIC_ADMIN_TOKEN: 'token-1' },
      labels: { 'pic.container': 'main' },
      ports: [{ containerPort: 8080 }],
      volumes: [{ volume: name('data'), target: '/data' }],
      network: name('net'),
      networkAliases: ['echo'],
      healthcheck: {
        test: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/health'],
        intervalMs: 300,
        timeoutMs: 2000,
        retries: 3,
      },
    });
    assert.equal(created.state, 'created');
    assert.equal(created.running, false);
    assert.deepEqual(created.ports, [], 'no host port before start');
    assert.equal(created.labels[LABEL_CELL], CELL);
    assert.equal(created.labels[LABEL_SERVICE], 'test-echo');
    assert.equal(created.labels['pic.container'], 'main');
    assert.equal(created.imageDigest, digest);

    await assert.rejects(
      runtime.createContainer({ name: name('echo'), service: 'test-echo', image: digest }),
      (err) => err instanceof NameConflictError && err.code === 'name_conflict' && err.objectName === name('echo'),
    );

    await runtime.startContainer(created.id);
    await runtime.startContainer(name('echo')); // already running: fine
    const running = await runtime.inspectContainer(name('echo'));
    assert.equal(running.running, true);
    const port = hostPort(running, 8080);
    assert.ok(port > 0);

    const home = await httpGet(`http://127.0.0.1:${port}/`);
    assert.equal(home.status, 200);
    assert.equal(home.body, 'test-echo ok\n');
    const echo = await httpGet(`http://127.0.0.1:${port}/cgi-bin/echo?hello=1`);
    assert.match(echo.body, /^service=test-echo$/m);
    assert.match(echo.body, /^query=hello=1$/m);

    // Accounts through exec, the provisioning contract.
    const add = await runtime.exec(name('echo'), ['pic-account', 'add', 'alice', 'pw-alice']);
    assert.deepEqual(add, { exitCode: 0, stdout: 'added\n', stderr: '' });
    const fromStdin = await runtime.exec(name('echo'), ['pic-account', 'add', 'bob', '-'], { stdin: 'pw bob\n' });
    assert.equal(fromStdin.exitCode, 0, fromStdin.stderr);
    assert.equal((await runtime.exec(name('echo'), ['pic-account', 'add', 'alice', 'pw2'])).stdout, 'updated\n');
    assert.equal((await runtime.exec(name('echo'), ['pic-account', 'list'])).stdout, 'alice\nbob\n');
    assert.equal((await runtime.exec(name('echo'), ['pic-account', 'check', 'bob', 'pw bob'])).exitCode, 0);
    assert.equal((await runtime.exec(name('echo'), ['pic-account', 'check', 'alice', 'pw-alice'])).exitCode, 1);
    const bad = await runtime.exec(name('echo'), ['pic-account', 'add', 'Not Valid', 'x']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /invalid username/);
    assert.equal(bad.stdout, '');
    // argv is never interpreted by a shell.
    const literal = await runtime.exec(name('echo'), ['echo', '$HOME; rm -rf /', '`id`']);
    assert.equal(literal.stdout, '$HOME; rm -rf / `id`\n');

    // The HTTP admin endpoint sees the same accounts and wants the token.
    assert.equal((await httpGet(`http://127.0.0.1:${port}/cgi-bin/accounts`)).status, 401);
    const listed = await httpGet(`http://127.0.0.1:${port}/cgi-bin/accounts`, {
      headers: { 'X-Admin-Token': 'token-1' },
    });
    assert.equal(listed.status, 200);
    assert.equal(listed.body, 'alice\nbob\n');

    // A command that hangs is abandoned at the deadline, and killed.
    const t0 = Date.now();
    await assert.rejects(runtime.exec(name('echo'), ['sleep', '30'], { timeoutMs: 300 }), (err) => {
      assert.ok(err instanceof ExecTimeoutError, String(err));
      assert.equal(err.code, 'exec_timeout');
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, 'timed out promptly');
    const ps = await runtime.exec(name('echo'), ['ps', '-o', 'args']);
    assert.doesNotMatch(ps.stdout, /sleep 30/, 'the timed-out process was killed');

    // Containers on the network resolve each other by alias.
    const peer = await runtime.exec(name('echo'), ['wget', '-q', '-O', '-', 'http://echo:8080/']);
    assert.equal(peer.stdout, 'test-echo ok\n');

    const healthDeadline = Date.now() + 10_000;
    while ((await runtime.inspectContainer(name('echo'))).health !== 'healthy' && Date.now() < healthDeadline)
      await sleep(100);
    assert.equal((await runtime.inspectContainer(name('echo'))).health, 'healthy');

    const logs = await runtime.logs(name('echo'));
    assert.match(logs.stdout, /test-echo: serving \/www on :8080/);

    const stopStarted = Date.now();
    await runtime.stopContainer(name('echo'), { timeoutSeconds: 5 });
    assert.ok(Date.now() - stopStarted < 4000, 'the service stops on TERM, not after the timeout');
    await runtime.stopContainer(name('echo')); // already stopped: fine
    const stopped = await runtime.inspectContainer(name('echo'));
    assert.equal(stopped.state, 'exited');
    assert.equal(stopped.running, false);
    assert.equal(stopped.exitCode, 0);
    assert.match((await runtime.logs(name('echo'), { tail: 5 })).stdout, /test-echo: stopping/);
    await assert.rejects(runtime.exec(name('echo'), ['true']), /not running/);

    await runtime.removeContainer(name('echo'));
    await assert.rejects(
      runtime.inspectContainer(name('echo')),
      (err) => err instanceof NotFoundError && err.code === 'not_found',
    );
    await runtime.removeContainer(name('echo'), { missingOk: true });
    await assert.rejects(runtime.removeContainer(name('echo')), NotFoundError);

    // The data volume outlives the container: a new one sees the accounts.
    const again = await runtime.createContainer({
      name: name('echo2'),
      service: 'test-echo',
      image: TEST_ECHO_IMAGE,
      volumes: [{ volume: name('data'), target: '/data' }],
    });
    await runtime.startContainer(again.id);
    assert.equal((await runtime.exec(again.id, ['pic-account', 'list'])).stdout, 'alice\nbob\n');
    const firstStart = (await runtime.inspectContainer(again.id)).startedAt;
    await runtime.restartContainer(again.id, { timeoutSeconds: 2 });
    const restarted = await runtime.inspectContainer(again.id);
    assert.equal(restarted.running, true);
    assert.notEqual(restarted.startedAt, firstStart);
    await runtime.removeContainer(again.id, { force: true });

    await runtime.removeVolume(name('data'));
    await runtime.removeVolume(name('data'), { missingOk: true });
    await runtime.removeNetwork(name('net'));
    await runtime.removeNetwork(name('net'), { missingOk: true });
    await assert.rejects(runtime.removeNetwork(name('net')), NotFoundError);
  });

  it('lists only this cell’s objects, by service, and another cell cannot touch them', async () => {
    const a = await runtime.createContainer({ name: name('list-a'), service: 'svc-a', image: digest });
    const b = await runtime.createContainer({ name: name('list-b'), service: 'svc-b', image: digest });
    await runtime.createVolume({ name: name('vol-a'), service: 'svc-a' });
    await runtime.createNetwork({ name: name('net-b'), service: 'svc-b', internal: true });

    const all = await runtime.listContainers();
    assert.deepEqual(
      all.map((c) => c.name),
      [name('list-a'), name('list-b')],
    );
    assert.ok(all.every((c) => c.cellId === CELL));
    assert.deepEqual(
      (await runtime.listContainers({ service: 'svc-a' })).map((c) => c.id),
      [a.id],
    );
    assert.deepEqual(
      (await runtime.listVolumes({ service: 'svc-a' })).map((v) => v.name),
      [name('vol-a')],
    );
    const nets = await runtime.listNetworks();
    assert.deepEqual(
      nets.map((n) => [n.name, n.service, n.internal]),
      [[name('net-b'), 'svc-b', true]],
    );

    const other = new DockerRuntime({ cellId: `other-${suffix}`, socket: engine.socketPath });
    assert.deepEqual(await other.listContainers(), []);
    assert.deepEqual(await other.listVolumes(), []);
    assert.deepEqual(await other.listNetworks(), []);
    await assert.rejects(other.removeContainer(b.id, { force: true }), (err) => {
      assert.ok(err instanceof NotOwnedError);
      assert.equal(err.foundCell, CELL);
      assert.match(err.message, new RegExp(`belongs to cell ${CELL}`));
      return true;
    });
    await assert.rejects(other.removeVolume(name('vol-a')), NotOwnedError);
    await assert.rejects(other.createNetwork({ name: name('net-b'), service: 'x' }), NameConflictError);
    assert.equal((await runtime.inspectContainer(b.id)).state, 'created', 'still there');

    await runtime.removeContainer(a.id);
    await runtime.removeContainer(b.id);
    assert.deepEqual(await runtime.listContainers(), []);
  });

  it('refuses to touch a container, network or volume without this cell’s label', async () => {
    // Made directly through the engine API, as another program on the same engine would.
    const plain = await runtime.docker.createContainer({
      name: name('unlabelled'),
      Image: digest,
      Labels: { 'pic.service': 'test-echo' },
    });
    foreign.push(plain.id);
    await plain.start();
    const plainNet = await runtime.docker.createNetwork({ Name: name('unlabelled-net') });
    foreign.push(plainNet.id);
    await runtime.docker.createVolume({ Name: name('unlabelled-vol') });
    foreign.push(name('unlabelled-vol'));

    assert.ok(!(await runtime.listContainers()).some((c) => c.id === plain.id), 'not listed');
    assert.ok(!(await runtime.listNetworks()).some((n) => n.name === name('unlabelled-net')));
    assert.ok(!(await runtime.listVolumes()).some((v) => v.name === name('unlabelled-vol')));

    const refused = (err: unknown) => {
      assert.ok(err instanceof NotOwnedError, String(err));
      assert.equal(err.code, 'not_owned');
      assert.equal(err.foundCell, undefined);
      assert.match(err.message, /no pic\.cell label/);
      return true;
    };
    for (const ref of [plain.id, name('unlabelled')]) {
      await assert.rejects(runtime.stopContainer(ref), refused);
      await assert.rejects(runtime.removeContainer(ref, { force: true, missingOk: true }), refused);
      await assert.rejects(runtime.startContainer(ref), refused);
      await assert.rejects(runtime.restartContainer(ref), refused);
      await assert.rejects(runtime.inspectContainer(ref), refused);
      await assert.rejects(runtime.exec(ref, ['true']), refused);
      await assert.rejects(runtime.logs(ref), refused);
    }
    await assert.rejects(runtime.removeNetwork(name('unlabelled-net'), { missingOk: true }), refused);
    await assert.rejects(runtime.removeVolume(name('unlabelled-vol'), { missingOk: true }), refused);
    // Neither adopted by a create nor mounted into one of ours.
    await assert.rejects(runtime.createVolume({ name: name('unlabelled-vol'), service: 'x' }), NameConflictError);
    await assert.rejects(
      runtime.createContainer({
        name: name('mounts-foreign'),
        service: 'x',
        image: digest,
        volumes: [{ volume: name('unlabelled-vol'), target: '/data' }],
      }),
      NameConflictError,
    );
    await assert.rejects(
      runtime.createContainer({
        name: name('joins-foreign'),
        service: 'x',
        image: digest,
        network: name('unlabelled-net'),
      }),
      refused,
    );

    const still = await runtime.docker.getContainer(plain.id).inspect();
    assert.equal(still.State.Running, true, 'the unlabelled container was left running');
  });

  it('rejects specs that would break the labelling or the engine’s naming rules', async () => {
    await assert.rejects(
      runtime.createContainer({
        name: name('bad-label'),
        service: 'x',
        image: digest,
        labels: { [LABEL_CELL]: 'someone-else' },
      }),
      InvalidSpecError,
    );
    await assert.rejects(runtime.createContainer({ name: 'has space', service: 'x', image: digest }), InvalidSpecError);
    await assert.rejects(runtime.createVolume({ name: '../etc', service: 'x' }), InvalidSpecError);
    await assert.rejects(runtime.exec(name('none'), []), InvalidSpecError);
    assert.throws(() => new DockerRuntime({ cellId: 'bad cell', socket: engine.socketPath }), InvalidSpecError);
  });
});

describe('DockerRuntime without an engine', () => {
  it('says which socket it could not reach', async () => {
    const runtime = new DockerRuntime({ cellId: 'c1', socket: '/nonexistent/pic/docker.sock' });
    for (const call of [
      () => runtime.ping(),
      () => runtime.listContainers(),
      () => runtime.createVolume({ name: 'v', service: 's' }),
    ]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof EngineUnreachableError, String(err));
        assert.equal(err.code, 'engine_unreachable');
        assert.match(err.message, /container engine not reachable at unix:\/\/\/nonexistent\/pic\/docker\.sock/);
        assert.match(err.message, /ENOENT/);
        return true;
      });
    }
  });

  it('says so when a socket is there but nothing answers in time', async () => {
    const { createServer } = await import('node:net');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'pic-rt-'));
    const socket = join(dir, 'silent.sock');
    const server = createServer(() => {}); // accepts and never answers
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const runtime = new DockerRuntime({ cellId: 'c1', socket, pingTimeoutMs: 200 });
      await assert.rejects(
        runtime.ping(),
        (err) => err instanceof EngineUnreachableError && err.message.includes(`unix://${socket}`),
      );
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
