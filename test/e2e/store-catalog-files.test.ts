import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CellProcess } from '../support/cell-process.js';
import { ADMIN, type ApiClient } from '../support/client.js';
import { buildTestEchoImage, startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import {
  installTestEcho,
  loadManifestModule,
  testEchoManifest,
  writeCatalog,
  type ManifestModule,
  startStoreCell,
  stopStoreCell,
} from './store-helpers.js';

// Catalog files that are not regular files, are huge, or never end (TUF's "endless data" and "slow
// retrieval"), against a real cell process with test-echo installed: GET /api/store answers at once
// with the refusal and still lists what is installed, install refuses with the reason (never a 500),
// and a FIFO in the catalog never stalls an admin login.
const start = await startDockerEngine();

describe('catalog files that are not regular, huge or endless (real cell process)', () => {
  if ('skip' in start) {
    it('needs a container engine', { skip: `NO CONTAINER ENGINE, catalog file e2e not run: ${start.skip}` }, () => {});
    return;
  }
  const engine: DockerEngine = start;
  let m: ManifestModule;
  let storeKey: { privateKey: KeyObject; publicKey: KeyObject };
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  let version = 0;
  let manifest: any;

  const publish = () => writeCatalog(m, catalogDir, { version: ++version, key: storeKey.privateKey, manifest });
  const file = (rel: string) => join(catalogDir, rel);
  const INDEX = 'services-index/index.json';
  const BUNDLE = 'services-index/index.sig.json';
  const MANIFEST = 'manifests/test-echo.yaml';
  /** Replaces a catalog file by something else; returns a function that puts the original back. */
  const replace = (rel: string, make: (path: string) => void) => {
    renameSync(file(rel), file(`${rel}.good`));
    make(file(rel));
    return () => {
      rmSync(file(rel), { recursive: true, force: true });
      renameSync(file(`${rel}.good`), file(rel));
    };
  };
  /** GET /api/store within `ms`: a bad catalog must never leave it without an answer. */
  const store = async (ms = 5000) => {
    const res = await fetch(`${cell.url}/api/store`, {
      headers: { cookie: api.cookieHeader() },
      signal: AbortSignal.timeout(ms),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const assertRefusedButListed = async (code: string, reason: RegExp, context: string) => {
    const res = await store();
    assert.equal(res.status, 200, `${context}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.catalog.verified, false, context);
    assert.equal(res.body.catalog.refusal.code, code, `${context}: ${JSON.stringify(res.body.catalog)}`);
    assert.match(res.body.catalog.refusal.reason, reason, context);
    const echo = res.body.services.find((s: any) => s.id === 'test-echo');
    assert.equal(
      echo?.installed,
      true,
      `${context}: the installed service is still listed: ${JSON.stringify(res.body.services)}`,
    );
    // (test-echo itself is installed: installing it again answers already_installed without the catalog)
    const install = await api.post('/api/store/install', { id: 'another-service' });
    assert.equal(install.status, 422, `${context}: install refuses with the reason: ${install.text}`);
    assert.equal(install.body.code, code);
  };

  before(async () => {
    m = await loadManifestModule();
    const digest = await buildTestEchoImage(engine.socketPath);
    storeKey = m.generateStoreKeyPair();
    manifest = await testEchoManifest(m, digest, storeKey.privateKey);
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-catalog-files-'));
    await publish();
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    await installTestEcho(api);
  });

  after(async () => {
    try {
      await stopStoreCell(cell, api, [catalogDir]);
    } finally {
      await engine.stop();
    }
  });

  it('a directory as the signature bundle: a refusal with the reason, the installed service still listed', async () => {
    const restore = replace(BUNDLE, (p) => mkdirSync(p));
    try {
      await assertRefusedButListed(
        'malformed_bundle',
        /is not a regular file \(a directory\)/,
        'bundle is a directory',
      );
    } finally {
      restore();
    }
    assert.equal((await store()).body.catalog.verified, true, 'the good catalog is accepted again');
  });

  it('a FIFO as the index or a manifest answers at once, and admin login stays prompt meanwhile', async () => {
    for (const rel of [INDEX, BUNDLE, MANIFEST]) {
      const restore = replace(rel, (p) => execFileSync('mkfifo', [p]));
      try {
        // More concurrent reads than libuv has threads (4): a blocking open would starve them all.
        const started = performance.now();
        const reads = Array.from({ length: 12 }, () => store());
        const login = (async () => {
          const t = performance.now();
          const res = await fetch(`${cell.url}/api/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(ADMIN),
            signal: AbortSignal.timeout(10_000),
          });
          return { status: res.status, ms: performance.now() - t };
        })();
        const answers = await Promise.all(reads);
        const { status, ms } = await login;
        assert.equal(status, 200, `${rel}: admin login answers`);
        assert.ok(ms < 2000, `${rel}: admin login took ${Math.round(ms)} ms`);
        assert.ok(performance.now() - started < 4000, `${rel}: every GET /api/store answered promptly`);
        for (const res of answers) assert.equal(res.status, 200);
        if (rel === MANIFEST) {
          const echo = answers[0]!.body.services.find((s: any) => s.id === 'test-echo');
          assert.equal(echo.installed, true);
          assert.equal(echo.refusal.code, 'missing_manifest', JSON.stringify(echo));
          assert.match(echo.refusal.reason, /is not a regular file \(a FIFO\)/);
        } else {
          await assertRefusedButListed(
            rel === INDEX ? 'malformed_index' : 'malformed_bundle',
            /a FIFO/,
            `${rel} is a FIFO`,
          );
        }
      } finally {
        restore();
      }
    }
  });

  it('an oversized index or manifest is refused from its size, before it is read', async () => {
    const restore = replace(INDEX, (p) => {
      writeFileSync(p, '');
      truncateSync(p, 8 * 1024 ** 3); // sparse: 8 GiB that reading would try to hold in memory
    });
    try {
      await assertRefusedButListed('malformed_index', /is larger than 1048576 bytes \(8589934592\)/, 'an 8 GiB index');
    } finally {
      restore();
    }
    const restoreManifest = replace(MANIFEST, (p) => writeFileSync(p, 'x'.repeat(300 * 1024)));
    try {
      const echo = (await store()).body.services.find((s: any) => s.id === 'test-echo');
      assert.equal(echo.refusal.code, 'missing_manifest', JSON.stringify(echo));
      assert.match(echo.refusal.reason, /is larger than 262144 bytes/);
      assert.equal(echo.installed, true);
    } finally {
      restoreManifest();
    }
    assert.equal((await store()).body.catalog.verified, true);
  });

  it('another index claiming the accepted version is refused (version_reused); the change under a higher version is not', async () => {
    assert.equal((await store()).body.catalog.verified, true);
    const changed = { ...manifest, description: 'the same version number, other contents' };
    await writeCatalog(m, catalogDir, { version, key: storeKey.privateKey, manifest: changed });
    await assertRefusedButListed(
      'version_reused',
      new RegExp(`claims version ${version}, which this cell already accepted`),
      'version reused',
    );
    await writeCatalog(m, catalogDir, { version: ++version, key: storeKey.privateKey, manifest: changed });
    const res = await store();
    assert.equal(res.body.catalog.verified, true, JSON.stringify(res.body.catalog));
    assert.equal(res.body.catalog.highest_accepted_version, version);
  });
});
