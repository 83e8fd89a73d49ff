import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, type KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, type CellProcess } from '../support/cell-process.js';
import type { ApiClient } from '../support/client.js';
import { buildTestEchoVariant, freePort, registryBlobPath, startEngineAndRegistry } from '../support/docker-engine.js';
import {
  assertEngineEmpty as assertNothingLeft,
  engineView,
  loadManifestModule,
  startStoreCell,
  stopStoreCell,
  testEchoManifest,
  writeCatalog,
  type EngineView,
  type ManifestModule,
} from './store-helpers.js';

// Getting an image to the cell (ADR 001): a real registry (Debian's docker-registry) holds the
// test service's image; the signed manifest pins it by registry digest; the cell, which does not
// have the image, pulls it by digest as the install job's pulling step (progress in the job),
// checks it, and only then creates anything. A tag moved in the registry changes nothing; a
// registry serving other content under the pinned digest, or no registry at all, fails the job
// with a snake_case code and leaves nothing behind.
const started = await startEngineAndRegistry();

/** The slice of DockerRuntime this file uses beyond the cell's view (tag, push, forget images). */
interface Tools {
  tagImage(source: string, repository: string, tag: string): Promise<void>;
  pushImage(ref: string): Promise<string>;
  inspectImage(ref: string): Promise<{ digest: string; repoDigests: string[] } | undefined>;
  docker: { getImage(ref: string): { remove(opts: { force: boolean }): Promise<unknown> } };
}

describe('the store pulls images by digest from a real registry (real cell process)', () => {
  if ('skip' in started) {
    it('needs an engine and a registry', { skip: `store registry e2e not run: ${started.skip}` }, () => {});
    const leftover = started.engine;
    if (leftover) after(() => leftover.stop());
    return;
  }
  const { engine, registry } = started;
  const suffix = randomBytes(4).toString('hex');
  const repository = `${registry.host}/pic/test-echo-${suffix}`;
  let tools: Tools;
  let m: ManifestModule;
  let storeKey: { privateKey: KeyObject; publicKey: KeyObject };
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  let view: EngineView;
  let version = 0;
  let pinned: string; // registry manifest digest of the image the catalog pins
  let pinnedId: string; // its image ID
  let otherId: string;
  let movedDigest: string; // registry digest of the other image, pushed under the pinned image's tag
  let fresh: string; // registry digest of an image this engine never pulled (it keeps the manifests it did)
  let gone: string; // registry digest of an image whose tag was then moved to another image

  /** A catalog pinning `image`, signed by the trusted key unless `opts` say otherwise. */
  const publish = async (image: string, opts: Partial<Parameters<typeof writeCatalog>[2]> = {}) =>
    writeCatalog(m, catalogDir, {
      version: ++version,
      key: storeKey.privateKey,
      manifest: await testEchoManifest(m, image, storeKey.privateKey),
      ...opts,
    });
  /** Removes an image (every tag and digest of it) from the engine, so the cell has to pull it. */
  const forget = async (ref: string) => {
    const info = await tools.inspectImage(ref);
    if (info) await tools.docker.getImage(info.digest).remove({ force: true });
  };
  const assertEngineEmpty = (why: string) => assertNothingLeft(view, why);
  const install = () => api.post('/api/store/install', { id: 'test-echo', wait: true });

  before(async () => {
    const runtime = (await import(pathToFileURL(join(REPO_ROOT, 'packages', 'runtime', 'dist', 'index.js')).href)) as {
      DockerRuntime: new (o: { cellId: string; socket: string }) => Tools;
    };
    tools = new runtime.DockerRuntime({ cellId: `e2e-${suffix}`, socket: engine.socketPath });
    // An image of this test's own (other tests share pic-test-echo:1 on this engine and must keep it).
    pinnedId = await buildTestEchoVariant(engine.socketPath, `pinned-${suffix}`, `pic-e2e-pull-${suffix}:pinned`);
    await tools.tagImage(`pic-e2e-pull-${suffix}:pinned`, repository, '1');
    pinned = await tools.pushImage(`${repository}:1`);
    otherId = await buildTestEchoVariant(engine.socketPath, `other-${suffix}`, `pic-e2e-pull-${suffix}:other`);
    await buildTestEchoVariant(engine.socketPath, `fresh-${suffix}`, `pic-e2e-pull-${suffix}:fresh`);
    await tools.tagImage(`pic-e2e-pull-${suffix}:fresh`, `${repository}-fresh`, '1');
    fresh = await tools.pushImage(`${repository}-fresh:1`);
    await buildTestEchoVariant(engine.socketPath, `gone-${suffix}`, `pic-e2e-pull-${suffix}:gone`);
    await tools.tagImage(`pic-e2e-pull-${suffix}:gone`, `${repository}-gone`, '1');
    gone = await tools.pushImage(`${repository}-gone:1`);
    // Then someone pushes a different image under the same tag.
    await tools.tagImage(`pic-e2e-pull-${suffix}:other`, `${repository}-gone`, '1');
    assert.notEqual(await tools.pushImage(`${repository}-gone:1`), gone);
    await forget(`pic-e2e-pull-${suffix}:pinned`);
    await forget(`pic-e2e-pull-${suffix}:fresh`);
    await forget(`pic-e2e-pull-${suffix}:gone`);
    assert.equal(await tools.inspectImage(`${repository}@${pinned}`), undefined, 'the engine lacks the pinned image');

    m = await loadManifestModule();
    storeKey = m.generateStoreKeyPair();
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-store-registry-'));
    await publish(`${repository}:1@${pinned}`);
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    view = await engineView(engine.socketPath, (await api.get('/api/store')).body.engine.cell_id);
  });

  after(async () => {
    try {
      await stopStoreCell(cell, api, []);
      if (tools)
        for (const ref of [
          `${repository}@${pinned}`,
          `${repository}:1`,
          `${repository}-fresh:1`,
          `${repository}-gone:1`,
          `pic-e2e-pull-${suffix}:other`,
        ])
          await forget(ref).catch(() => undefined);
      if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
    } finally {
      await registry.stop();
      await engine.stop();
    }
  });

  it('refuses a registry-pinned catalog signed by an untrusted key, changed after signing, rolled back or expired, before any pull', async () => {
    const good = `${repository}:1@${pinned}`;
    const refused = async (code: string) => {
      const res = await api.post('/api/store/install', { id: 'test-echo' });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, code);
      assert.equal(await tools.inspectImage(`${repository}@${pinned}`), undefined, `nothing pulled (${code})`);
    };
    await publish(good, { key: m.generateStoreKeyPair().privateKey });
    await refused('untrusted_key');
    // Mix-and-match: the pin swapped for the moved tag's image after the index was signed.
    await publish(good, { tamper: (man) => (man.containers[0].image = `${repository}:1@sha256:${'6'.repeat(64)}`) });
    await refused('digest_mismatch');
    // An image signature made for another digest (the index itself is fine).
    const swapped = await testEchoManifest(m, good, storeKey.privateKey);
    swapped.containers[0].image = `${repository}:1@sha256:${'7'.repeat(64)}`;
    await publish(good, { manifest: swapped });
    await refused('signature_mismatch');
    await publish(good, { version: version - 1 });
    await refused('rollback');
    await publish(good, { expires: '2020-01-01T00:00:00Z' });
    await refused('expired');
    await assertEngineEmpty('refused catalogs');
    await publish(good);
  });

  it('installs by pulling the pinned digest: the job goes through pulling with layers and bytes, and runs that image', async () => {
    const listed = (await api.get('/api/store')).body.services.find((s: any) => s.id === 'test-echo');
    assert.equal(listed.verified, true, JSON.stringify(listed));
    assert.deepEqual(listed.containers, [{ name: 'server', image: `${repository}:1@${pinned}`, signed: true }]);

    const res = await install();
    assert.equal(res.status, 200, res.text);
    const job = res.body.job;
    assert.equal(job.state, 'healthy');
    assert.equal(job.error_code, null);
    const [image] = job.progress.images;
    assert.equal(image.ref, `${repository}@${pinned}`);
    assert.equal(image.state, 'pulled');
    assert.deepEqual(image.containers, ['server']);
    assert.equal(image.layers, 1);
    assert.equal(image.layers_done, 1);
    assert.ok(image.bytes_total > 100_000, `the layer's bytes were downloaded: ${JSON.stringify(image)}`);
    assert.equal(image.bytes_done, image.bytes_total);
    assert.deepEqual(
      (await api.get(`/api/store/jobs/${job.id}`)).body.job.progress,
      job.progress,
      'the job keeps its progress',
    );
    const pulled = await tools.inspectImage(`${repository}@${pinned}`);
    assert.equal(pulled?.digest, pinnedId, 'the engine now has the pinned image');
    const status = await api.get('/api/services/catalog/test-echo/status');
    assert.equal(status.body.healthy, true, status.text);
    assert.equal(status.body.containers[0].image_digest, pinnedId, 'the container runs the pinned image');
    const audit = (await api.get('/api/audit?action=store.install.finished&limit=5')).body.entries[0];
    assert.equal(audit.result, 'ok');

    assert.equal((await api.post('/api/store/remove', { id: 'test-echo', purge: true })).status, 200);
    await forget(`${repository}@${pinned}`);
  });

  it('a tag moved in the registry changes nothing: the cell pulls the pinned digest, not the tag', async () => {
    await tools.tagImage(`pic-e2e-pull-${suffix}:other`, repository, '1');
    movedDigest = await tools.pushImage(`${repository}:1`);
    assert.notEqual(movedDigest, pinned, 'the tag now names another image');
    await forget(`${repository}:1`);
    const res = await install();
    assert.equal(res.status, 200, res.text);
    const status = await api.get('/api/services/catalog/test-echo/status');
    assert.equal(status.body.containers[0].image_digest, pinnedId, 'still the pinned image, not the one under the tag');
    assert.notEqual(status.body.containers[0].image_digest, otherId);
    assert.equal((await api.post('/api/store/remove', { id: 'test-echo', purge: true })).status, 200);
    await forget(`${repository}@${pinned}`);
  });

  it('refuses a registry that serves other content under a pinned digest: job failed, image_digest_mismatch, nothing created', async () => {
    // What a compromised registry does: the pinned digest now answers with another image's manifest.
    await publish(`${repository}-fresh:1@${fresh}`);
    copyFileSync(registryBlobPath(registry.storageDir, movedDigest), registryBlobPath(registry.storageDir, fresh));
    const res = await install();
    assert.equal(res.status, 502, res.text);
    assert.equal(res.body.ok, false);
    assert.equal(res.body.code, 'image_digest_mismatch');
    assert.equal(res.body.job.state, 'failed');
    assert.equal(res.body.job.error_code, 'image_digest_mismatch');
    assert.match(res.body.job.error, /does not verify/);
    assert.equal(await tools.inspectImage(`${repository}-fresh@${fresh}`), undefined, 'nothing pulled');
    assert.equal(await tools.inspectImage(otherId), undefined, 'not the other image either');
    await assertEngineEmpty('a tampered registry');
    const entry = (await api.get('/api/audit?action=store.install.finished&limit=5')).body.entries[0];
    assert.equal(entry.result, 'error');
    assert.equal(entry.details.error_code, 'image_digest_mismatch');
    assert.equal((await api.get('/api/store')).body.services.find((s: any) => s.id === 'test-echo').state, 'available');
  });

  it('a different image pushed under the tag, the pinned one deleted: refused (image_not_in_registry), never the new one', async () => {
    const path = `pic/test-echo-${suffix}-gone`;
    const deleted = await fetch(`http://${registry.host}/v2/${path}/manifests/${gone}`, { method: 'DELETE' });
    assert.equal(deleted.status, 202, await deleted.text());
    await publish(`${repository}-gone:1@${gone}`);
    const res = await install();
    assert.equal(res.status, 502, res.text);
    assert.equal(res.body.code, 'image_not_in_registry');
    assert.equal(res.body.job.error_code, 'image_not_in_registry');
    assert.match(res.body.job.error, /has no such image/);
    assert.equal(
      await tools.inspectImage(`${repository}-gone:1`),
      undefined,
      'the image now under the tag was not pulled',
    );
    await assertEngineEmpty('a registry without the pinned image');
  });

  it('a registry that does not answer fails the job with registry_unreachable, naming it, and creates nothing', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await publish(`${dead}/pic/test-echo:1@${pinned}`);
    const res = await install();
    assert.equal(res.status, 502, res.text);
    assert.equal(res.body.code, 'registry_unreachable');
    assert.equal(res.body.job.error_code, 'registry_unreachable');
    assert.match(res.body.job.error, new RegExp(`registry ${dead.replace(/\./g, '\\.')} is not reachable`));
    await assertEngineEmpty('an unreachable registry');
  });
});
