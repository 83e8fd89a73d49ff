import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CatalogRefusal, type RefusalCode } from './errors.js';
import { BUNDLE_PATH, INDEX_PATH, loadCatalog, readCatalogIndex, readCatalogManifest } from './files.js';
import { indexEntryFor, signIndex } from './catalog.js';
import { generateStoreKeyPair, keyFingerprint, publicKeyPem } from './keys.js';
import { parseManifest } from './manifest.js';
import { clone, REPO_ROOT, validManifest } from './fixtures.test-support.js';

const execFileAsync = promisify(execFile);
const store = generateStoreKeyPair();
let work: string;

function refusal(code: RefusalCode, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CatalogRefusal, `expected a CatalogRefusal, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** A catalog root with two manifests, signed by `store`. */
async function makeCatalog(name: string) {
  const root = join(work, name);
  await mkdir(join(root, 'manifests'), { recursive: true });
  await mkdir(join(root, 'services-index'), { recursive: true });
  const a = validManifest();
  const b = clone(validManifest());
  b.id = 'other';
  await writeFile(join(root, 'manifests', 'demo.yaml'), stringify(a));
  await writeFile(join(root, 'manifests', 'other.yaml'), stringify(b));
  const index = {
    version: 4,
    expires: '2099-01-01T00:00:00Z',
    services: [indexEntryFor(a, 'manifests/demo.yaml'), indexEntryFor(b, 'manifests/other.yaml')],
  };
  const { bundle } = await signIndex(index, store.privateKey);
  await writeFile(join(root, INDEX_PATH), JSON.stringify(index, null, 2));
  await writeFile(join(root, BUNDLE_PATH), JSON.stringify(bundle, null, 2));
  return root;
}

/** Runs a maintainer script (already built: --no-build) and returns its exit code and output. */
async function script(name: string, args: string[]) {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [
      join(REPO_ROOT, 'scripts', 'store', name),
      ...args,
      '--no-build',
    ]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pic-manifest-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('catalog files', () => {
  it('loads a signed catalog and every manifest it lists', async () => {
    const root = await makeCatalog('ok');
    const catalog = await loadCatalog({ root, trustedKeys: [store.publicKey] });
    assert.deepEqual(
      catalog.manifests.map((m) => m.id),
      ['demo', 'other'],
    );
    assert.equal(catalog.signedBy, keyFingerprint(store.publicKey));
  });

  it('refuses a catalog whose bundle file is missing', async () => {
    const root = await makeCatalog('nobundle');
    await rm(join(root, BUNDLE_PATH));
    await assert.rejects(readCatalogIndex({ root, trustedKeys: [store.publicKey] }), refusal('missing_bundle'));
  });

  it('refuses a manifest file edited after signing, and one that is gone', async () => {
    const root = await makeCatalog('edited');
    const { index } = await readCatalogIndex({ root, trustedKeys: [store.publicKey] });
    const file = join(root, 'manifests', 'other.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('name: Demo', 'name: Evil'));
    await assert.rejects(
      readCatalogManifest(root, index, 'other'),
      refusal('digest_mismatch', /manifests\/other\.yaml has digest/),
    );
    await assert.rejects(loadCatalog({ root, trustedKeys: [store.publicKey] }), refusal('digest_mismatch'));
    assert.equal((await readCatalogManifest(root, index, 'demo')).id, 'demo', 'the untouched manifest still verifies');
    await rm(join(root, 'manifests', 'demo.yaml'));
    await assert.rejects(readCatalogManifest(root, index, 'demo'), refusal('missing_manifest', /ENOENT/));
  });
});

describe("the repository's catalog", () => {
  it('ships no signed index and no store key: nobody holds a private key for them (store:publish writes a real one)', async () => {
    // A signed manifest pins only digests of real images, pushed to a registry a cell can reach; the
    // repository has none, so it ships nothing signed. npm run services:local makes a local catalog.
    assert.deepEqual(await readdir(join(REPO_ROOT, 'services-index')), ['README.md']);
  });

  it('keeps no private key in services-index/', async () => {
    for (const name of await readdir(join(REPO_ROOT, 'services-index'))) {
      const text = await readFile(join(REPO_ROOT, 'services-index', name), 'utf8');
      assert.doesNotMatch(text, /PRIVATE KEY/, name);
    }
  });
});

describe('maintainer scripts', () => {
  it('keygen writes a 0600 private key and refuses to overwrite it', async () => {
    const dir = join(work, 'keys');
    const first = await script('keygen.mjs', ['--out', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await stat(join(dir, 'store.key.pem'))).mode & 0o777, 0o600);
    const pub = await readFile(join(dir, 'store.pub.pem'), 'utf8');
    assert.match(first.stdout, new RegExp(keyFingerprint(pub)));
    const again = await script('keygen.mjs', ['--out', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
  });

  it('sign refuses to run without a key; sign then verify round-trips; tampering makes verify fail', async () => {
    const root = await makeCatalog('scripts');
    const keyFile = join(work, 'scripts-store.key.pem');
    await writeFile(keyFile, store.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(join(root, 'services-index', 'store.pub.pem'), publicKeyPem(store.publicKey));

    const noKey = await script('sign.mjs', ['--root', root]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /refusing to sign without --key/);

    const signedRun = await script('sign.mjs', ['--root', root, '--key', keyFile, '--expires-days', '30']);
    assert.equal(signedRun.code, 0, signedRun.stderr);
    assert.match(signedRun.stdout, /signed catalog version 5 \(2 services/);
    const index = JSON.parse(await readFile(join(root, INDEX_PATH), 'utf8'));
    assert.equal(index.version, 5, 'one more than the previous index');
    assert.ok(Math.abs(Date.parse(index.expires) - Date.now() - 30 * 86_400_000) < 60_000);
    const written = await Promise.all(
      (await readdir(join(root, 'services-index'))).map((n) => readFile(join(root, 'services-index', n), 'utf8')),
    );
    assert.ok(
      written.every((t) => !t.includes('PRIVATE KEY')),
      'the private key is never written next to the index',
    );

    const ok = await script('verify.mjs', ['--root', root]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /verified catalog version 5/);

    const lower = await script('sign.mjs', ['--root', root, '--key', keyFile, '--version', '5']);
    assert.equal(lower.code, 1);
    assert.match(lower.stderr, /must be greater than the current index version 5/);

    const rollback = await script('verify.mjs', ['--root', root, '--min-version', '6']);
    assert.equal(rollback.code, 1);
    assert.match(rollback.stderr, /refused \(rollback\)/);
    const expired = await script('verify.mjs', ['--root', root, '--now', '2100-01-01T00:00:00Z']);
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /refused \(expired\)/);
    const otherKey = join(work, 'other.pub.pem');
    await writeFile(otherKey, publicKeyPem(generateStoreKeyPair().publicKey));
    const untrusted = await script('verify.mjs', ['--root', root, '--key', otherKey]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /refused \(untrusted_key\)/);
    const rotated = await script('verify.mjs', [
      '--root',
      root,
      '--key',
      otherKey,
      '--key',
      join(root, 'services-index', 'store.pub.pem'),
    ]);
    assert.equal(rotated.code, 0, rotated.stderr);

    await writeFile(join(root, 'manifests', 'new.yaml'), stringify({ ...validManifest(), id: 'new' }));
    const unlisted = await script('verify.mjs', ['--root', root]);
    assert.equal(unlisted.code, 1);
    assert.match(unlisted.stderr, /manifests\/new\.yaml is not in the signed index/);
    await rm(join(root, 'manifests', 'new.yaml'));

    const manifestFile = join(root, 'manifests', 'demo.yaml');
    await writeFile(manifestFile, (await readFile(manifestFile, 'utf8')).replace('retries: 3', 'retries: 4'));
    const tampered = await script('verify.mjs', ['--root', root]);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /refused \(digest_mismatch\): manifests\/demo\.yaml has digest/);

    await writeFile(join(root, INDEX_PATH), JSON.stringify({ ...index, version: 99 }));
    const tamperedIndex = await script('verify.mjs', ['--root', root]);
    assert.equal(tamperedIndex.code, 1);
    assert.match(tamperedIndex.stderr, /refused \(signature_mismatch\)/);
  });

  it('sign refuses an invalid manifest, naming the file and field', async () => {
    const root = await makeCatalog('invalid');
    const keyFile = join(work, 'invalid-store.key.pem');
    await writeFile(keyFile, store.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const bad = { ...validManifest(), version: 'one' };
    await writeFile(join(root, 'manifests', 'demo.yaml'), stringify(bad));
    const res = await script('sign.mjs', ['--root', root, '--key', keyFile]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /manifests\/demo\.yaml is invalid: version must be a semantic version/);
    assert.equal(parseManifest(stringify(validManifest())).id, 'demo');
  });
});
