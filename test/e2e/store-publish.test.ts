import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';
import { freePort, startEngineAndRegistry } from '../support/docker-engine.js';
import { loadManifestModule, TEST_ECHO_MANIFEST, type ManifestModule } from './store-helpers.js';

// The maintainers' `npm run store:publish` and the admins' `npm run services:local`, run as the
// real scripts against the private engine and a real registry, with the tests' image builder
// (test/catalog/builder.mjs: test-echo, behind the first-party builder's interface). What they
// sign pins the digest the registry serves; a cell trusts the local catalog from cell.yaml alone
// and installs from it.
const started = await startEngineAndRegistry();
const BUILDER = join(REPO_ROOT, 'test', 'catalog', 'builder.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function script(path: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, path), ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The digest the registry serves for repository@reference (HEAD, Docker-Content-Digest). */
function servedDigest(host: string, path: string, reference: string): Promise<{ status: number; digest: string }> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port: Number(port),
        method: 'HEAD',
        path: `/v2/${path}/manifests/${reference}`,
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, digest: String(res.headers['docker-content-digest'] ?? '') });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface Tools {
  inspectImage(ref: string): Promise<{ digest: string; repoDigests: string[] } | undefined>;
  docker: { getImage(ref: string): { remove(opts: { force: boolean }): Promise<unknown> } };
}

describe('store:publish and services:local (real scripts, engine and registry)', () => {
  if ('skip' in started) {
    it('needs an engine and a registry', { skip: `publish e2e not run: ${started.skip}` }, () => {});
    const leftover = started.engine;
    if (leftover) after(() => leftover.stop());
    return;
  }
  const { engine, registry } = started;
  const suffix = randomBytes(4).toString('hex');
  const env = { DOCKER_HOST: engine.dockerHost, PIC_TEST_ECHO_MARKER: `pub-${suffix}` };
  let m: ManifestModule;
  let tools: Tools;
  let work: string;
  let root: string;
  let keyFile: string;
  let cell: CellProcess | undefined;
  const images: string[] = [];

  before(async () => {
    m = await loadManifestModule();
    const rt = (await import(pathToFileURL(join(REPO_ROOT, 'packages', 'runtime', 'dist', 'index.js')).href)) as {
      DockerRuntime: new (o: { cellId: string; socket: string }) => Tools;
    };
    tools = new rt.DockerRuntime({ cellId: `e2e-${suffix}`, socket: engine.socketPath });
    work = mkdtempSync(join(tmpdir(), 'pic-publish-'));
    root = join(work, 'source');
    mkdirSync(join(root, 'manifests'), { recursive: true });
    copyFileSync(TEST_ECHO_MANIFEST, join(root, 'manifests', 'test-echo.yaml'));
    const key = m.generateStoreKeyPair();
    keyFile = join(work, 'store.key.pem');
    writeFileSync(keyFile, (key.privateKey as any).export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  });

  after(async () => {
    try {
      await cell?.destroy();
      for (const ref of images) {
        const info = await tools.inspectImage(ref).catch(() => undefined);
        if (info)
          await tools.docker
            .getImage(info.digest)
            .remove({ force: true })
            .catch(() => undefined);
      }
      if (work) rmSync(work, { recursive: true, force: true });
    } finally {
      await registry.stop();
      await engine.stop();
    }
  });

  it('refuses to run without a registry or a key, or with something that is not a registry host', async () => {
    const noRegistry = await script('scripts/store/publish.mjs', ['--key', keyFile, '--no-build'], env);
    assert.equal(noRegistry.code, 2, noRegistry.stderr);
    assert.match(noRegistry.stderr, /refusing to publish without --registry/);
    const noKey = await script('scripts/store/publish.mjs', ['--registry', registry.host, '--no-build'], env);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /refusing to publish without --key/);
    const bad = await script(
      'scripts/store/publish.mjs',
      ['--registry', 'Not A Registry', '--key', keyFile, '--no-build'],
      env,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is not a registry host/);
  });

  it('an unreachable registry fails the publish, and nothing is pinned or signed', async () => {
    const out = join(work, 'dead');
    const res = await script(
      'scripts/store/publish.mjs',
      [
        '--registry',
        `127.0.0.1:${await freePort()}`,
        '--key',
        keyFile,
        '--root',
        root,
        '--out',
        out,
        '--builder',
        BUILDER,
        '--no-build',
      ],
      env,
    );
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, /push|connection refused|127\.0\.0\.1/);
    assert.ok(!existsSync(join(out, 'services-index', 'index.json')), 'no index');
    assert.deepEqual(
      existsSync(join(out, 'manifests')) ? readdirSync(join(out, 'manifests')) : [],
      [],
      'no manifest written',
    );
  });

  it('publish pushes, pins the digest the registry serves, signs image and index; store:verify accepts it', async () => {
    const out = join(work, 'published');
    const res = await script(
      'scripts/store/publish.mjs',
      ['--registry', registry.host, '--key', keyFile, '--root', root, '--out', out, '--builder', BUILDER, '--no-build'],
      env,
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /published and signed catalog version 1 \(1 services/);
    const manifest = m.parseManifest(readFileSync(join(out, 'manifests', 'test-echo.yaml'), 'utf8'));
    const ref = manifest.containers[0].image as string;
    const match = new RegExp(
      `^${registry.host.replace(/\./g, '\\.')}/pic/test-echo:pub-${suffix}@(sha256:[0-9a-f]{64})$`,
    ).exec(ref);
    assert.ok(match, ref);
    images.push(ref.replace(/@.*/, ''));
    const served = await servedDigest(registry.host, 'pic/test-echo', `pub-${suffix}`);
    assert.equal(served.status, 200);
    assert.equal(served.digest, match[1], 'the pin is the digest the registry serves for that tag');
    assert.ok(manifest.containers[0].signature, 'the image is signed');
    assert.match(
      readFileSync(join(out, 'manifests', 'test-echo.yaml'), 'utf8'),
      /^# test-echo: a tiny HTTP service/,
      'comments are kept',
    );
    const verify = await script('scripts/store/verify.mjs', ['--root', out, '--no-build'], env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /verified catalog version 1/);

    const again = await script(
      'scripts/store/publish.mjs',
      ['--registry', registry.host, '--key', keyFile, '--root', root, '--out', out, '--builder', BUILDER, '--no-build'],
      env,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /catalog version 2/, 'a new release, never the same version');
  });

  it('services:local: local registry, local key, signed catalog, cell.yaml; the cell then trusts it and installs', async () => {
    const data = join(work, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'cell.yaml'), `# my settings\nstore:\n  engine_socket: ${engine.socketPath}\n`);
    const localEnv = { ...env, PIC_TEST_ECHO_MARKER: `local-${suffix}` };
    const args = ['--data-dir', data, '--root', join(REPO_ROOT, 'test', 'catalog'), '--builder', BUILDER, '--no-build'];
    const res = await script('scripts/services-local.mjs', args, localEnv);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /local catalog version 1 signed \(test-echo/);
    const local = join(data, 'store-local');
    assert.equal(statSync(join(local, 'store.key.pem')).mode & 0o777, 0o600, "the private key is the owner's only");
    assert.equal(statSync(local).mode & 0o777, 0o700);
    const fingerprint = m.keyFingerprint(readFileSync(join(local, 'store.pub.pem'), 'utf8') as never);
    assert.match(res.stdout, new RegExp(fingerprint));
    const cellYaml = readFileSync(join(data, 'cell.yaml'), 'utf8');
    assert.match(cellYaml, /^# my settings/, "the admin's cell.yaml is kept");
    assert.match(cellYaml, new RegExp(`engine_socket: ${engine.socketPath}`));
    assert.match(cellYaml, /catalog_dir: .*store-local\/catalog/);
    assert.match(cellYaml, /name: local-store\n\s+file: store-local\/store\.pub\.pem/);
    const { port } = JSON.parse(readFileSync(join(local, 'registry.json'), 'utf8'));
    assert.equal(
      (await servedDigest(`127.0.0.1:${port}`, 'pic/test-echo', `local-${suffix}`).catch(() => ({ status: 0 }))).status,
      0,
      'the registry is stopped again',
    );
    const manifest = m.parseManifest(readFileSync(join(local, 'catalog', 'manifests', 'test-echo.yaml'), 'utf8'));
    const ref = manifest.containers[0].image as string;
    assert.match(ref, new RegExp(`^127\\.0\\.0\\.1:${port}/pic/test-echo:local-${suffix}@sha256:[0-9a-f]{64}$`));
    images.push(ref.replace(/:[^/:@]+@/, '@'));
    assert.ok(await tools.inspectImage(ref.replace(/:[^/:@]+@/, '@')), 'the image is on the engine by its digest');

    cell = await startCellProcess({ dataDir: data, timeoutMs: 30_000 });
    const api = new ApiClient(cell.url);
    await completeSetup(api);
    const keys = (await api.get('/api/vault/trust-keys')).body.trust_keys;
    assert.deepEqual(
      keys.map((k: any) => [k.name, k.fingerprint]),
      [['local-store', fingerprint]],
    );
    const store = (await api.get('/api/store')).body;
    assert.equal(store.catalog.verified, true, JSON.stringify(store.catalog));
    assert.equal(store.catalog.signed_by, fingerprint);
    assert.equal(store.catalog.signed_by_key, 'local-store');
    assert.deepEqual(
      store.services.map((s: any) => [s.id, s.verified, s.state]),
      [['test-echo', true, 'available']],
    );
    const install = await api.post('/api/store/install', { id: 'test-echo', wait: true });
    assert.equal(install.status, 200, install.text);
    assert.equal(install.body.job.state, 'healthy');
    assert.equal(install.body.job.progress, null, 'nothing to pull: services:local put the image on the engine');
    assert.equal((await api.post('/api/store/remove', { id: 'test-echo', purge: true })).status, 200);
    await cell.destroy();
    cell = undefined;

    // Again: the same key and port, a newer catalog version.
    const again = await script('scripts/services-local.mjs', args, localEnv);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /local catalog version 2 signed/);
    assert.match(again.stdout, new RegExp(fingerprint));
    assert.equal(JSON.parse(readFileSync(join(local, 'registry.json'), 'utf8')).port, port);
    assert.equal(
      (readFileSync(join(data, 'cell.yaml'), 'utf8').match(/local-store/g) ?? []).length,
      1,
      'the key is named once',
    );
  });
});
