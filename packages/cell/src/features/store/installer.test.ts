import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { manifestDigest } from '@pic/manifest';
import { EngineError } from '@pic/runtime';
import { nowIso } from '../../lib/tokens.js';
import { Installer, type InstallRequest } from './installer.js';
import { findInstallation, findJob } from './queries.js';
import { serviceSecretName } from './specs.js';
import {
  demoManifest,
  engineDeps,
  FakeRuntime,
  IMAGE_ID,
  openTestCell,
  seedInstallation,
  type TestCell,
} from './fixtures.test-support.js';

// The installer's bookkeeping — job states, rollback of exactly what it created, crash recovery,
// idempotent removal — against an in-memory runtime double. The real engine path is covered by
// test/e2e/store.test.ts.
describe('Installer (runtime double)', () => {
  let cell: TestCell;
  let runtime: FakeRuntime;
  let installer: Installer;
  let installed: string[];
  let removing: string[];
  const manifest = demoManifest();
  const names = (s: string) => `pic-c0ffee000000-demo-${s}`;

  const request = (): InstallRequest => ({
    id: 'demo',
    manifest,
    manifestDigest: manifestDigest(manifest),
    indexVersion: 1,
    plans: manifest.containers.map((c) => ({
      container: c.name,
      image: IMAGE_ID,
      pinned: IMAGE_ID,
      actual: IMAGE_ID,
      signedBy: undefined,
    })),
    actor: 'admin',
  });
  const begin = async () => cell.database.db.transaction().execute((trx) => installer.begin(trx, request()));
  const audit = (action: string) =>
    (
      cell.database.sqlite
        .prepare('SELECT result, details FROM audit_log WHERE action = ? ORDER BY id')
        .all(action) as Array<{ result: string; details: string }>
    ).map((r) => ({
      result: r.result,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));

  beforeEach(async () => {
    cell = await openTestCell();
    runtime = new FakeRuntime();
    runtime.images.set('pic-demo:1', IMAGE_ID);
    installed = [];
    removing = [];
    installer = new Installer({
      ...engineDeps(cell, runtime),
      healthPollMs: 5,
      onInstalled: (id) => void installed.push(id),
      onRemoving: (id) => void removing.push(id),
    });
  });
  afterEach(() => cell.close());
  after(() => undefined);

  it('runs verifying → pulling → creating → starting → healthy and records the installation', async () => {
    const job = await begin();
    assert.equal(job.state, 'verifying');
    assert.equal((await findInstallation(cell.database.db, 'demo'))?.state, 'installing');
    const done = await installer.run(job, request());
    assert.equal(done.state, 'healthy', done.error ?? '');
    assert.equal((await findInstallation(cell.database.db, 'demo'))?.state, 'installed');
    assert.deepEqual(installed, ['demo']);
    assert.deepEqual([...runtime.containers.keys()].sort(), [names('app'), names('worker')]);
    const app = runtime.containers.get(names('app'))!;
    assert.equal(app.spec.image, IMAGE_ID, 'created from the pinned image ID');
    assert.equal(app.spec.env?.['DEMO_HOST'], 'demo.cell.lan');
    const token = await cell.vault.get(serviceSecretName('demo', 'token'));
    assert.equal(token?.length, 24);
    assert.equal(app.spec.env?.['DEMO_TOKEN'], token, 'the secret is filled from the vault');
    assert.deepEqual(app.spec.ports, [{ containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 }]);
    assert.deepEqual(app.spec.volumes, [{ volume: names('data'), target: '/data', readOnly: false }]);
    assert.deepEqual(
      audit('store.install.finished').map((e) => [e.result, e.details['state']]),
      [['ok', 'healthy']],
    );
  });

  it('writes TLS files from the cell CA into a container that asks for them, before it starts', async () => {
    const withTls = structuredClone(manifest);
    withTls.containers[0]!.tls = { path: '/etc/pic/tls', gid: 33 };
    const req = { ...request(), manifest: withTls, manifestDigest: manifestDigest(withTls) };
    const job = await cell.database.db.transaction().execute((trx) => installer.begin(trx, req));
    const done = await installer.run(job, req);
    assert.equal(done.state, 'healthy', done.error ?? '');
    assert.equal(runtime.puts.length, 1, 'only the container that asks');
    const put = runtime.puts[0]!;
    assert.equal(put.container, names('app'));
    assert.equal(put.dir, '/etc/pic/tls');
    assert.deepEqual(
      put.files.map((f) => [f.name, f.mode.toString(8), f.gid ?? 0]),
      [
        ['cert.pem', '644', 0],
        ['key.pem', '640', 33],
        ['ca.pem', '644', 0],
      ],
    );
    assert.ok(
      runtime.calls.indexOf(`putFiles ${names('app')}`) < runtime.calls.indexOf(`startContainer ${names('app')}`),
      'before start',
    );
    const key = String(put.files[1]!.content);
    assert.match(key, /BEGIN PRIVATE KEY/);
    const cert = await cell.database.db.selectFrom('vault_certificates').selectAll().executeTakeFirstOrThrow();
    assert.equal(cert.name, 'demo.cell.lan');
    assert.equal(await cell.vault.get(cert.key_secret!), key, 'the key is recorded in the vault');
    assert.ok(
      String(put.files[0]!.content).startsWith(cert.certificate_pem.trim()),
      'the chain starts with the issued certificate',
    );
  });

  it('a second begin for the same service is a 409, not a second job', async () => {
    await begin();
    await assert.rejects(begin(), (err: any) => err.status === 409 && /installing already/.test(err.message));
    assert.equal((await cell.database.db.selectFrom('service_jobs').select('id').execute()).length, 1);
  });

  it('a failure rolls back exactly what the job created (newest first) and leaves the cell as it was', async () => {
    runtime.failures.createContainer = (name) =>
      name === names('worker') ? new EngineError('no space left on device', 500) : undefined;
    const done = await installer.run(await begin(), request());
    assert.equal(done.state, 'failed');
    assert.match(done.error!, /no space left on device/);
    assert.equal(await findInstallation(cell.database.db, 'demo'), undefined, 'no installation left');
    assert.deepEqual([...runtime.containers.keys()], [], 'the container it made is gone');
    assert.deepEqual([...runtime.networks.keys()], [], 'the network it made is gone');
    assert.deepEqual([...runtime.volumes.keys()], [], 'the volume it made is gone');
    assert.equal(await cell.vault.get(serviceSecretName('demo', 'token')), undefined, 'the secret it made is gone');
    const removals = runtime.calls.filter((c) => /^remove(Container|Network|Volume) /.test(c));
    assert.deepEqual(
      removals,
      [
        `removeContainer ${names('worker')}`,
        `removeContainer ${names('app')}`,
        `removeVolume ${names('data')}`,
        `removeNetwork pic-c0ffee000000-demo`,
      ],
      'newest first',
    );
    assert.deepEqual(installed, []);
    const [entry] = audit('store.install.finished');
    assert.equal(entry!.result, 'error');
    assert.match(String(entry!.details['error']), /no space left/);
  });

  it("a rollback keeps what existed before the job: a kept data volume and the service's secrets", async () => {
    runtime.volumes.set(names('data'), 'demo');
    await cell.vault.put(serviceSecretName('demo', 'token'), 'kept-secret-from-an-earlier-install');
    runtime.failures.startContainer = () => new EngineError('port already in use', 500);
    const done = await installer.run(await begin(), request());
    assert.equal(done.state, 'failed');
    assert.deepEqual([...runtime.volumes.keys()], [names('data')]);
    assert.equal(await cell.vault.get(serviceSecretName('demo', 'token')), 'kept-secret-from-an-earlier-install');
    assert.deepEqual([...runtime.containers.keys()], []);
  });

  it('a container that does not become healthy fails the job and is rolled back', async () => {
    const orig = runtime.startContainer.bind(runtime);
    runtime.startContainer = async (name) => {
      await orig(name);
      Object.assign(runtime.containers.get(name)!, { health: 'unhealthy' });
    };
    const done = await installer.run(await begin(), request());
    assert.equal(done.state, 'failed');
    assert.match(done.error!, /unhealthy/);
    assert.deepEqual([...runtime.containers.keys()], []);
  });

  it('leftover containers of the service (a crash before they were recorded) are cleared before creating', async () => {
    await runtime.createContainer({ name: names('app'), service: 'demo', image: IMAGE_ID });
    const done = await installer.run(await begin(), request());
    assert.equal(done.state, 'healthy', done.error ?? '');
  });

  it('after a crash, recover() rolls back an interrupted install and completes an interrupted removal', async () => {
    // An install that died while creating: its job row lists what it had made.
    const job = await begin();
    await runtime.createNetwork({ name: 'pic-c0ffee000000-demo', service: 'demo' });
    await runtime.createContainer({ name: names('app'), service: 'demo', image: IMAGE_ID });
    await cell.database.db
      .updateTable('service_jobs')
      .set({
        state: 'creating',
        resources: JSON.stringify([
          { kind: 'network', name: 'pic-c0ffee000000-demo' },
          { kind: 'container', name: names('app') },
        ]),
      })
      .where('id', '=', job.id)
      .execute();
    // A removal that died half-way, of another service.
    await runtime.createContainer({ name: 'pic-c0ffee000000-other-app', service: 'other', image: IMAGE_ID });
    const now = nowIso();
    await seedInstallation(cell.database.db, demoManifest('other'), 'removing');
    await cell.database.db
      .insertInto('service_jobs')
      .values({
        service_id: 'other',
        kind: 'remove',
        state: 'removing',
        version: '1.0.0',
        actor: 'admin',
        created_at: now,
        updated_at: now,
      })
      .execute();

    const result = await installer.recover();
    assert.deepEqual(result, { rolledBack: 1, removed: 1 });
    const failed = await findJob(cell.database.db, job.id);
    assert.equal(failed?.state, 'failed');
    assert.match(failed!.error!, /interrupted by a restart/);
    assert.equal(await findInstallation(cell.database.db, 'demo'), undefined);
    assert.equal(await findInstallation(cell.database.db, 'other'), undefined);
    assert.deepEqual([...runtime.containers.keys()], []);
    assert.deepEqual([...runtime.networks.keys()], []);
    assert.deepEqual(removing, ['other']);
    // nothing left to recover
    assert.deepEqual(await installer.recover(), { rolledBack: 0, removed: 0 });
  });

  it('remove keeps volumes unless purged, is idempotent, and a failed removal can be retried', async () => {
    await installer.run(await begin(), request());
    runtime.failures.removeNetwork = () => new EngineError('network busy', 500);
    await assert.rejects(installer.remove('demo', false, 'admin'), /network busy/);
    assert.equal(
      (await findInstallation(cell.database.db, 'demo'))?.state,
      'removing',
      'half removed, visible as such',
    );
    delete runtime.failures.removeNetwork;
    const job = await installer.remove('demo', false, 'admin');
    assert.equal(job?.state, 'removed');
    assert.equal(await findInstallation(cell.database.db, 'demo'), undefined);
    assert.deepEqual([...runtime.containers.keys()], []);
    assert.deepEqual([...runtime.volumes.keys()], [names('data')], 'data kept');
    assert.ok(await cell.vault.get(serviceSecretName('demo', 'token')), 'secrets kept');
    assert.equal(await installer.remove('demo', false, 'admin'), undefined, 'nothing to remove: no job');
    const purge = await installer.remove('demo', true, 'admin');
    assert.equal(purge?.state, 'removed');
    assert.deepEqual([...runtime.volumes.keys()], []);
    assert.equal(await cell.vault.get(serviceSecretName('demo', 'token')), undefined);
  });

  describe('the pulling step', () => {
    const REF = `127.0.0.1:5000/pic/demo@sha256:${'3'.repeat(64)}`;
    const pulling = (): InstallRequest => ({
      ...request(),
      plans: manifest.containers.map((c) => ({
        container: c.name,
        image: REF,
        pinned: REF.split('@')[1]!,
        actual: undefined,
        signedBy: undefined,
        pull: REF,
      })),
    });

    it('pulls a missing image once by digest, keeps the progress in the job, and creates from that digest', async () => {
      runtime.registry.set(REF, IMAGE_ID);
      const job = await cell.database.db.transaction().execute((trx) => installer.begin(trx, pulling()));
      const done = await installer.run(job, pulling());
      assert.equal(done.state, 'healthy', done.error ?? '');
      assert.equal(
        runtime.calls.filter((c) => c.startsWith('pullImage')).length,
        1,
        'two containers, one image, one pull',
      );
      const progress = JSON.parse((await findJob(cell.database.db, job.id))!.progress!);
      assert.deepEqual(progress.images, [
        {
          ref: REF,
          containers: ['app', 'worker'],
          state: 'pulled',
          layers: 1,
          layers_done: 1,
          bytes_done: 100,
          bytes_total: 100,
        },
      ]);
      assert.equal(runtime.containers.get(names('app'))!.spec.image, REF);
    });

    it('a failed pull fails the job with its snake_case code and creates nothing', async () => {
      runtime.failures.pullImage = () =>
        Object.assign(new Error('registry 127.0.0.1:5000 is not reachable'), { code: 'registry_unreachable' });
      const job = await cell.database.db.transaction().execute((trx) => installer.begin(trx, pulling()));
      const done = await installer.run(job, pulling());
      assert.equal(done.state, 'failed');
      assert.equal(done.error_code, 'registry_unreachable');
      assert.match(done.error ?? '', /not reachable/);
      assert.equal(runtime.containers.size + runtime.networks.size + runtime.volumes.size, 0, 'nothing created');
      assert.equal(await cell.vault.get(serviceSecretName('demo', 'token')), undefined, 'not even the secret');
      assert.equal(await findInstallation(cell.database.db, 'demo'), undefined);
      assert.deepEqual(
        audit('store.install.finished').map((e) => [e.result, e.details['error_code']]),
        [['error', 'registry_unreachable']],
      );
    });

    it('an image that arrives without the pinned digest is refused before anything is created', async () => {
      runtime.registry.set(REF, IMAGE_ID);
      runtime.pullImage = async () => ({
        digest: IMAGE_ID,
        repoTags: [],
        repoDigests: [`127.0.0.1:5000/pic/demo@sha256:${'4'.repeat(64)}`],
        created: '',
        sizeBytes: 1,
        labels: {},
      });
      const job = await cell.database.db.transaction().execute((trx) => installer.begin(trx, pulling()));
      const done = await installer.run(job, pulling());
      assert.equal(done.state, 'failed');
      assert.equal(done.error_code, 'image_digest_mismatch');
      assert.equal(runtime.containers.size + runtime.networks.size + runtime.volumes.size, 0, 'nothing created');
    });
  });
});
