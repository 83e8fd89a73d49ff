import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup, IDENTITY } from '../support/client.js';
import { buildTestEchoImage, startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import {
  assertEngineEmpty as assertNothingLeft,
  engineView,
  eventually,
  loadManifestModule,
  startStoreCell,
  stopStoreCell,
  testEchoManifest,
  writeCatalog,
  type EngineView,
  type ManifestModule,
} from './store-helpers.js';

// The store end to end (ADR 001 + ADR 003) on the real engine: a real cell process reads a test
// catalog signed with a throwaway key, refuses every bad variant of it with the reason (audited,
// nothing created in the engine), installs test-echo from the good one, mounts its routes,
// provisions accounts, hands out credentials, deprovisions a deleted peer's account, removes the
// service, and its routes answer 404 again.
const start = await startDockerEngine();

describe('the store on a real container engine (real cell process)', () => {
  if ('skip' in start) {
    it('needs a container engine', { skip: `NO CONTAINER ENGINE, store e2e not run: ${start.skip}` }, () => {});
    return;
  }
  const engine: DockerEngine = start;
  let m: ManifestModule;
  let digest: string;
  let storeKey: { privateKey: KeyObject; publicKey: KeyObject };
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  let view: EngineView;
  let cellId: string;
  let version = 0;
  let echoContainer: string;

  /** A good catalog: test-echo pinned to the built image, image and index signed by the trusted key. */
  const goodManifest = () => testEchoManifest(m, digest, storeKey.privateKey);
  const publish = async (opts: Partial<Parameters<typeof writeCatalog>[2]> & { manifest?: any } = {}) =>
    writeCatalog(m, catalogDir, {
      version: ++version,
      key: storeKey.privateKey,
      manifest: opts.manifest ?? (await goodManifest()),
      ...opts,
    });

  /** Nothing of this cell exists in the engine. */
  const assertEngineEmpty = (why: string, opts?: { volumes?: boolean }) => assertNothingLeft(view, why, opts);
  const auditEntries = async (action: string) =>
    (await api.get(`/api/audit?action=${encodeURIComponent(action)}&limit=100`)).body.entries as any[];
  const accountsInService = async () => {
    const res = await view.exec(echoContainer, ['pic-account', 'list']);
    assert.equal(res.exitCode, 0, res.stderr);
    return res.stdout.split('\n').filter(Boolean);
  };

  before(async () => {
    m = await loadManifestModule();
    digest = await buildTestEchoImage(engine.socketPath);
    storeKey = m.generateStoreKeyPair();
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-store-catalog-'));
    await publish();
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    const store = await api.get('/api/store');
    assert.equal(store.status, 200, store.text);
    cellId = store.body.engine.cell_id;
    view = await engineView(engine.socketPath, cellId);
    echoContainer = `pic-${cellId}-test-echo-server`;
  });

  after(async () => {
    try {
      await stopStoreCell(cell, api, [cell?.dataDir, catalogDir]);
    } finally {
      await engine.stop();
    }
  });

  it('trusts only the key it was given (the repository ships none), and lists the verified catalog with the engine', async () => {
    const keys = (await api.get('/api/vault/trust-keys')).body.trust_keys.map((k: any) => k.name);
    assert.deepEqual(keys.sort(), ['test-store']);
    const res = await api.get('/api/store');
    assert.equal(res.body.catalog.verified, true, JSON.stringify(res.body.catalog));
    assert.equal(res.body.catalog.signed_by, m.keyFingerprint(storeKey.publicKey));
    assert.equal(res.body.catalog.signed_by_key, 'test-store');
    assert.equal(res.body.engine.reachable, true, JSON.stringify(res.body.engine));
    assert.equal(res.body.image_verification, 'enforce');
    const echo = res.body.services.find((s: any) => s.id === 'test-echo');
    assert.ok(echo, JSON.stringify(res.body.services));
    assert.equal(echo.verified, true);
    assert.equal(echo.installed, false);
    assert.equal(echo.state, 'available');
    assert.deepEqual(echo.containers, [{ name: 'server', image: `pic-test-echo:1@${digest}`, signed: true }]);
    // not installed: the status route answers and says so; every other route is 404
    const status = await api.get('/api/test-echo/status');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.installed, false);
    assert.equal((await api.get('/api/test-echo/echo')).status, 404);
    assert.equal((await api.get('/api/test-echo/accounts')).status, 404);
    assert.equal((await api.get('/api/no-such-service/status')).status, 404);
  });

  it('refuses a catalog signed by an untrusted key, saying so, audited, and creates nothing', async () => {
    const stranger = m.generateStoreKeyPair();
    await publish({ key: stranger.privateKey });
    const res = await api.get('/api/store');
    assert.equal(res.status, 200);
    assert.equal(res.body.catalog.verified, false);
    assert.equal(res.body.catalog.refusal.code, 'untrusted_key');
    assert.match(res.body.catalog.refusal.reason, /does not trust/);
    const install = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(install.status, 422, install.text);
    assert.equal(install.body.code, 'untrusted_key');
    assert.match(install.body.error, new RegExp(m.keyFingerprint(stranger.publicKey)));
    const denied = (await auditEntries('store.install')).find((e) => e.details.refusal === 'untrusted_key');
    assert.ok(denied, 'the refused install is audited with the reason');
    assert.equal(denied.result, 'error');
    assert.equal(denied.target_id, 'test-echo');
    assert.ok(
      (await auditEntries('store.catalog.refused')).some((e) => e.details.refusal === 'untrusted_key'),
      'the refused read is audited too',
    );
    await assertEngineEmpty('an untrusted catalog');
  });

  it('refuses a manifest changed after signing (mix-and-match), only that service, and creates nothing', async () => {
    await publish({ tamper: (man) => (man.containers[0].env.PIC_HTTP_PORT = '9090') });
    const res = await api.get('/api/store');
    assert.equal(res.body.catalog.verified, true, 'the index itself is fine');
    const echo = res.body.services.find((s: any) => s.id === 'test-echo');
    assert.equal(echo.verified, false);
    assert.equal(echo.refusal.code, 'digest_mismatch');
    const install = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(install.status, 422, install.text);
    assert.equal(install.body.code, 'digest_mismatch');
    assert.match(install.body.error, /changed after signing/);
    assert.ok(
      (await auditEntries('store.install')).some(
        (e) => e.details.refusal === 'digest_mismatch' && e.result === 'error',
      ),
    );
    await assertEngineEmpty('a tampered manifest');
  });

  it('refuses an image whose digest differs from the signed pin, and an unsigned image in enforce mode', async () => {
    const wrong = await testEchoManifest(m, `sha256:${'0'.repeat(64)}`, storeKey.privateKey);
    await publish({ manifest: wrong });
    const install = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(install.status, 422, install.text);
    assert.equal(install.body.code, 'image_digest_mismatch');
    assert.match(install.body.error, new RegExp(`has digest ${digest}.*pins sha256:0{64}`));
    const entry = (await auditEntries('store.install')).find((e) => e.details.refusal === 'image_digest_mismatch');
    assert.ok(entry, 'audited');
    assert.equal(entry.details.actual, digest);

    await publish({ manifest: await testEchoManifest(m, digest) });
    const unsigned = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(unsigned.status, 422, unsigned.text);
    assert.equal(unsigned.body.code, 'missing_bundle');
    assert.match(unsigned.body.error, /carries no signature/);
    await assertEngineEmpty('refused images');
  });

  it('an install interrupted by a crash of the cell is rolled back at the next start', async () => {
    // A health check that never passes keeps the job in "starting" with its container running.
    const stuck = await goodManifest();
    stuck.containers[0].healthcheck = {
      http: { port: 8080, path: '/never' },
      intervalSeconds: 5,
      timeoutSeconds: 2,
      retries: 5,
    };
    await publish({ manifest: stuck });
    const res = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(res.status, 202, res.text);
    await eventually('the container to run', async () =>
      (await view.listContainers()).some((c) => c.running) ? true : undefined,
    );
    assert.equal((await api.get(`/api/store/jobs/${res.body.job.id}`)).body.job.state, 'starting');
    cell.child.kill('SIGKILL');
    await cell.stop();
    assert.equal((await view.listContainers()).length, 1, 'the crash left the container behind');

    cell = await startCellProcess({ dataDir: cell.dataDir, timeoutMs: 30_000 });
    api = api.clone(cell.url);
    const job = await eventually('the interrupted job to be rolled back', async () => {
      const j = (await api.get(`/api/store/jobs/${res.body.job.id}`)).body.job;
      return j.state === 'failed' ? j : undefined;
    });
    assert.match(job.error, /interrupted by a restart of the cell while starting/);
    await assertEngineEmpty('recovery');
    assert.deepEqual(await view.listVolumes(), [], 'the volume that job created is gone too');
    const echo = (await api.get('/api/store')).body.services.find((s: any) => s.id === 'test-echo');
    assert.equal(echo.state, 'available');
    assert.equal((await api.get('/api/test-echo/echo')).status, 404);
  });

  it('an install whose account command is not in its image fails: healthy containers are not enough', async () => {
    const broken = await goodManifest();
    broken.accounts.list = { exec: { container: 'server', argv: ['pic-no-such-command', 'list'] }, output: 'lines' };
    await publish({ manifest: broken });
    const res = await api.post('/api/store/install', { id: 'test-echo', wait: true });
    assert.equal(res.status, 502, res.text);
    assert.equal(res.body.job.state, 'failed');
    assert.match(res.body.job.error, /^the account contract does not answer: listing the accounts of test-echo: /);
    assert.match(res.body.job.error, /pic-no-such-command in container "server"/);
    await assertEngineEmpty('the failed install');
    assert.equal((await api.get('/api/test-echo/status')).body.installed, false);
  });

  it('installs test-echo as a job that reaches healthy, and mounts its routes on the live server', async () => {
    await publish();
    const res = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.job.kind, 'install');
    const states = new Set<string>();
    const job = await eventually('the install job to finish', async () => {
      const j = (await api.get(`/api/store/jobs/${res.body.job.id}`)).body.job;
      states.add(j.state);
      return j.state === 'healthy' || j.state === 'failed' ? j : undefined;
    });
    assert.equal(job.state, 'healthy', `job failed: ${job.error}\n${cell.output().slice(-3000)}`);

    const store = await api.get('/api/store');
    const echo = store.body.services.find((s: any) => s.id === 'test-echo');
    assert.equal(echo.installed, true);
    assert.equal(echo.state, 'installed');
    assert.equal(echo.job.state, 'healthy');
    const containers = await view.listContainers({ service: 'test-echo' });
    assert.deepEqual(
      containers.map((c) => [c.name, c.running]),
      [[echoContainer, true]],
    );

    // installing again changes nothing
    const again = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.already_installed, true);

    const active = await api.get('/api/services/active');
    assert.deepEqual(
      active.body.services.map((s: any) => ({
        id: s.id,
        name: s.name,
        subdomain: s.subdomain,
        capabilities: s.capabilities,
      })),
      [{ id: 'test-echo', name: 'Test Echo', subdomain: 'echo', capabilities: ['accounts', 'http'] }],
    );
    const status = await api.get('/api/services/catalog/test-echo/status');
    assert.equal(status.body.healthy, true, status.text);
    const summary = (await api.get('/api/status')).body.subsystems.store;
    assert.equal(summary.state, 'ok', JSON.stringify(summary));
    assert.equal(summary.installed, 1);
    assert.equal(status.body.containers[0].image_digest, digest, 'the container runs the pinned image');
    assert.equal((await api.get('/api/test-echo/status')).body.installed, true);

    // the proxy routes reach the container
    const echoed = await api.get('/api/test-echo/echo?hello=world');
    assert.equal(echoed.status, 200, echoed.text);
    assert.match(echoed.text, /service=test-echo/);
    assert.match(echoed.text, /query=hello=world/);
    const posted = await api.post('/api/test-echo/echo', { note: 'hi' });
    assert.equal(posted.status, 200, posted.text);
    assert.match(posted.text, /method=POST/);
    assert.match(posted.text, /body=\{"note":"hi"\}/);
    // mounted routes are admin routes like every other /api/*, and writes need the CSRF token
    assert.equal((await new ApiClient(cell.url).get('/api/test-echo/echo')).status, 401);
    assert.equal((await api.post('/api/test-echo/echo', {}, { csrf: false })).status, 403);
    assert.ok(
      (await auditEntries('test-echo.proxy.post.echo')).some((e) => e.result === 'ok'),
      'a mounted write is audited under its route name',
    );
  });

  it('provisions accounts (cell-generated passwords in the vault), hands out credentials, and deprovisions a deleted peer', async () => {
    const peer = await api.post('/api/peers', { name: 'alice' });
    assert.equal(peer.status, 201, peer.text);
    const created = await api.post('/api/services/catalog/test-echo/accounts', { peer: 'alice' });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(Object.keys(created.body.account).sort(), ['created_at', 'in_service', 'peer', 'username']);
    assert.equal(created.body.account.username, 'alice');
    assert.deepEqual(await accountsInService(), ['alice']);
    assert.equal((await api.post('/api/services/catalog/test-echo/accounts', { peer: 'alice' })).status, 409);
    assert.equal((await api.post('/api/services/catalog/test-echo/accounts', { peer: 'nobody' })).status, 404);
    assert.equal(
      (await api.post('/api/services/catalog/test-echo/accounts', { peer: 'alice', username: 'x' })).status,
      400,
    );

    // the mounted accounts.* routes do the same (test-echo creates by exec, deletes and lists over HTTP)
    const bob = await api.post('/api/test-echo/accounts', { username: 'bob' });
    assert.equal(bob.status, 201, bob.text);
    assert.deepEqual(await accountsInService(), ['alice', 'bob']);
    const list = await api.get('/api/test-echo/accounts');
    assert.deepEqual(
      list.body.accounts.map((a: any) => [a.username, a.peer, a.in_service]),
      [
        ['alice', 'alice', true],
        ['bob', null, true],
      ],
    );
    assert.equal(list.body.service_error, null);
    const removed = await api.delete('/api/test-echo/accounts/bob');
    assert.equal(removed.status, 200, removed.text);
    assert.deepEqual(await accountsInService(), ['alice']);

    // credentials: the manifest's template filled with the account and the vault's password
    const creds = await api.get('/api/services/catalog/test-echo/accounts/alice/credentials');
    assert.equal(creds.status, 200, creds.text);
    const [c] = creds.body.credentials;
    assert.equal(c.host, `echo.${IDENTITY.domain}`);
    assert.equal(c.username, 'alice');
    assert.equal(c.protocol, 'http');
    assert.equal(c.port, 443);
    assert.ok(c.password.length >= 20, 'a generated password');
    const check = await view.exec(echoContainer, ['pic-account', 'check', 'alice', '-'], { stdin: `${c.password}\n` });
    assert.equal(check.exitCode, 0, 'the handed-out password is the one the service has');
    assert.deepEqual(
      (await api.get('/api/test-echo/accounts/alice/credentials')).body.credentials,
      creds.body.credentials,
    );
    const admin = await api.get('/api/peers/alice/service-credentials');
    assert.equal(admin.status, 200, admin.text);
    assert.deepEqual(admin.body.services, [
      { service: 'test-echo', name: 'Test Echo', username: 'alice', credentials: creds.body.credentials },
    ]);
    const own = new ApiClient(cell.url);
    assert.equal((await own.login('alice', peer.body.login.password)).status, 200);
    const mine = await own.get('/api/peer/service-credentials');
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(mine.body.services, admin.body.services);
    assert.equal(
      (await own.get('/api/services/catalog/test-echo/accounts/alice/credentials')).status,
      403,
      'a peer sees only its own',
    );

    // the password is in no other response and in no log line
    const audit = await api.get('/api/audit?limit=500');
    assert.ok(!audit.text.includes(c.password), 'not in the audit log');
    assert.ok(!cell.output().includes(c.password), 'not in the cell log');
    assert.ok(!(await api.get('/api/test-echo/accounts')).text.includes(c.password));

    // deleting the peer deprovisions its account in the service and forgets the password
    const del = await api.delete('/api/peers/alice');
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(await accountsInService(), []);
    assert.deepEqual((await api.get('/api/services/catalog/test-echo/accounts')).body.accounts, []);
    assert.equal((await api.get('/api/services/catalog/test-echo/accounts/alice/credentials')).status, 404);
    const deprov = (await auditEntries('services.account.deprovision')).find((e) => e.target_id === 'test-echo/alice');
    assert.ok(deprov, 'the deprovisioning is audited');
    assert.equal(deprov.result, 'ok');
  });

  it('restarts the service and waits for it to be healthy', async () => {
    const res = await api.post('/api/services/catalog/test-echo/restart');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.healthy, true);
  });

  it('is not healthy while its account contract does not answer, though its containers are', async () => {
    const accountsCgi = ['/www/cgi-bin/accounts', '/www/cgi-bin/accounts.off'];
    const moved = await view.exec(echoContainer, ['/bin/busybox', 'mv', ...accountsCgi]);
    assert.equal(moved.exitCode, 0, moved.stderr);
    try {
      const res = await api.get('/api/services/catalog/test-echo/status');
      assert.equal(res.status, 200, res.text);
      assert.ok(
        res.body.containers.every((c: any) => c.healthy),
        JSON.stringify(res.body.containers),
      );
      assert.equal(res.body.healthy, false, JSON.stringify(res.body));
      assert.equal(res.body.accounts.answers, false);
      const expected = /^the account contract does not answer: listing the accounts of test-echo/;
      assert.match(res.body.accounts.reason, expected);
    } finally {
      await view.exec(echoContainer, ['/bin/busybox', 'mv', ...[...accountsCgi].reverse()]);
    }
    const back = (await api.get('/api/services/catalog/test-echo/status')).body;
    assert.equal(back.healthy, true, JSON.stringify(back));
    assert.deepEqual(back.accounts, { answers: true, reason: null });
  });

  it('removes the service: containers and network gone, data volume kept unless purged, routes 404 again', async () => {
    await api.post('/api/test-echo/accounts', { username: 'carol' });
    // `wait` as install takes it: removal answers once finished either way
    const res = await api.post('/api/store/remove', { id: 'test-echo', wait: true });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.removed, true);
    assert.equal(res.body.job.state, 'removed');
    await assertEngineEmpty('removal', { volumes: false });
    assert.deepEqual(
      (await view.listVolumes({ service: 'test-echo' })).map((v) => v.name),
      [`pic-${cellId}-test-echo-data`],
      'data is kept',
    );
    assert.equal((await api.get('/api/test-echo/echo')).status, 404);
    assert.equal((await api.post('/api/test-echo/echo', {})).status, 404);
    assert.equal((await api.get('/api/test-echo/accounts')).status, 404);
    assert.equal((await api.get('/api/test-echo/status')).body.installed, false);
    assert.deepEqual((await api.get('/api/services/active')).body.services, []);
    const again = await api.post('/api/store/remove', { id: 'test-echo' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.removed, false, 'removing twice is harmless');

    // reinstalling finds the kept data (the account survives on the volume), then purge removes it
    const reinstall = await api.post('/api/store/install', { id: 'test-echo', wait: true });
    assert.equal(reinstall.status, 200, reinstall.text);
    assert.equal(reinstall.body.job.state, 'healthy');
    assert.deepEqual(await accountsInService(), ['carol']);
    assert.equal((await api.get('/api/test-echo/accounts/carol/credentials')).status, 200);
    const purged = await api.post('/api/store/remove', { id: 'test-echo', purge: true });
    assert.equal(purged.status, 200, purged.text);
    assert.deepEqual(await view.listVolumes({ service: 'test-echo' }), []);
    await assertEngineEmpty('purge');
    const entry = (await auditEntries('store.remove')).find((e) => e.details.purge === true && e.result === 'ok');
    assert.ok(entry, 'removal is audited');
  });

  it('refuses a rolled-back index and an expired one', async () => {
    const newest = version;
    await writeCatalog(m, catalogDir, {
      version: newest - 1,
      key: storeKey.privateKey,
      manifest: await goodManifest(),
    });
    const res = await api.get('/api/store');
    assert.equal(res.body.catalog.verified, false);
    assert.equal(res.body.catalog.refusal.code, 'rollback');
    assert.equal(res.body.catalog.highest_accepted_version, newest);
    const rollback = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(rollback.status, 422);
    assert.equal(rollback.body.code, 'rollback');

    await publish({ expires: '2020-01-01T00:00:00Z' });
    const expired = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(expired.status, 422, expired.text);
    assert.equal(expired.body.code, 'expired');
    await assertEngineEmpty('refused catalogs');
    const verify = await api.get('/api/audit/verify');
    assert.equal(verify.body.valid, true, verify.text);
  });
});

describe('the store without a container engine (real cell process)', () => {
  let cell: CellProcess;
  let api: ApiClient;
  let m: ManifestModule;
  let key: { privateKey: KeyObject; publicKey: KeyObject };
  let dir: string;
  before(async () => {
    // The tests' own catalog, signed with a throwaway key that cell.yaml tells the cell to trust.
    m = await loadManifestModule();
    key = m.generateStoreKeyPair();
    dir = mkdtempSync(join(tmpdir(), 'pic-store-noengine-'));
    await writeCatalog(m, join(dir, 'catalog'), {
      version: 1,
      key: key.privateKey,
      manifest: await testEchoManifest(m, `sha256:${'5'.repeat(64)}`, key.privateKey),
    });
    writeFileSync(join(dir, 'test-store.pub.pem'), m.publicKeyPem(key.publicKey));
    cell = await startCellProcess({
      cellYaml: [
        'store:',
        `  catalog_dir: ${join(dir, 'catalog')}`,
        '  engine_socket: /nonexistent/pic-docker.sock',
        '  trusted_keys:',
        '    - name: test-store',
        `      file: ${join(dir, 'test-store.pub.pem')}`,
        '',
      ].join('\n'),
    });
    api = new ApiClient(cell.url);
    await completeSetup(api);
  });
  after(async () => {
    await cell?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("trusts the key cell.yaml names (audited), lists the verified catalog, and install answers 503 with the engine's reason", async () => {
    const keys = (await api.get('/api/vault/trust-keys')).body.trust_keys;
    assert.deepEqual(
      keys.map((k: any) => [k.name, k.fingerprint]),
      [['test-store', m.keyFingerprint(key.publicKey)]],
    );
    const seeded = (await api.get('/api/audit?action=store.trust_key.seed')).body.entries[0];
    assert.equal(seeded.target_id, 'test-store');
    const store = await api.get('/api/store');
    assert.equal(store.status, 200, store.text);
    assert.equal(store.body.catalog.verified, true, JSON.stringify(store.body.catalog));
    assert.equal(store.body.catalog.signed_by_key, 'test-store');
    assert.deepEqual(
      store.body.services.map((s: any) => s.id),
      ['test-echo'],
    );
    assert.equal(store.body.engine.reachable, false);
    assert.match(store.body.engine.reason, /nonexistent\/pic-docker\.sock/);
    const install = await api.post('/api/store/install', { id: 'test-echo' });
    assert.equal(install.status, 503, install.text);
    assert.match(install.body.error, /container engine is not reachable.*nonexistent\/pic-docker\.sock/);
    const entry = (await api.get('/api/audit?action=store.install')).body.entries[0];
    assert.equal(entry.result, 'error');
    assert.equal(entry.details.status, 503);
    assert.equal((await api.post('/api/store/install', { id: 'nothing-like-it' })).status, 404);
    assert.equal((await api.post('/api/store/remove', { id: 'test-echo' })).body.removed, false);
    const waiting = await api.post('/api/store/remove', { id: 'test-echo', wait: true });
    assert.equal(waiting.status, 200, `remove accepts "wait" as install does: ${waiting.text}`);
    assert.equal(waiting.body.removed, false);
    assert.equal((await api.get('/api/services/catalog/test-echo/status')).body.installed, false);
    assert.equal((await api.get('/api/services/catalog/nothing/status')).status, 404);
    // nothing installed and no engine: a store not in use, which does not make the cell degraded
    const status = (await api.get('/api/status')).body;
    assert.equal(status.subsystems.store.state, 'not_configured', JSON.stringify(status.subsystems.store));
    assert.match(status.subsystems.store.reason, /nonexistent\/pic-docker\.sock/);
  });
});

describe("the store with the repository's own catalog (real cell process)", () => {
  let cell: CellProcess;
  let api: ApiClient;
  before(async () => {
    cell = await startCellProcess({ cellYaml: 'store:\n  engine_socket: /nonexistent/pic-docker.sock\n' });
    api = new ApiClient(cell.url);
    await completeSetup(api);
  });
  after(() => cell.destroy());

  it("lists nothing: the repository ships no signed index and no key, and test-echo is in no user's store", async () => {
    assert.deepEqual((await api.get('/api/vault/trust-keys')).body.trust_keys, []);
    const store = await api.get('/api/store');
    assert.equal(store.status, 200, store.text);
    assert.equal(store.body.catalog.verified, false);
    assert.match(store.body.catalog.refusal.reason, /services-index\/index\.json/);
    assert.deepEqual(store.body.services, []);
    assert.equal((await api.post('/api/store/install', { id: 'test-echo' })).status, 422);
  });
});
