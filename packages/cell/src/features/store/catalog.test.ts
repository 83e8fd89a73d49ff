import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStoreKeyPair, keyFingerprint, publicKeyPem } from '@pic/manifest';
import { silentLogger } from '../../lib/logger.js';
import { readSetting } from '../../db/settings.js';
import { addTrustKey, deleteTrustKey, listTrustKeys, parseTrustKey, type ParsedTrustKey } from '../vault/trust-keys.js';
import {
  INDEX_SETTING,
  SEED_KEY_NAME,
  StoreCatalog,
  seedTrustKey,
  type AcceptedIndex,
  type CatalogView,
} from './catalog.js';
import { demoManifest, openTestCell, writeTestCatalog, type TestCell } from './fixtures.test-support.js';

const trustedPair = generateStoreKeyPair();
const strangerPair = generateStoreKeyPair();

function refused(view: CatalogView): { code: string; reason: string } {
  assert.equal(view.ok, false, 'expected a refusal');
  return (view as Extract<CatalogView, { ok: false }>).refusal;
}

describe('StoreCatalog: the signed catalog as the cell reads it', () => {
  let cell: TestCell;
  let root: string;
  let catalog: StoreCatalog;
  let now = new Date();

  const trust = async (name: string, pem: string) => {
    await cell.database.db.transaction().execute((trx) => addTrustKey(trx, name, parseTrustKey(pem) as ParsedTrustKey));
  };
  const auditActions = () =>
    cell.database.sqlite.prepare('SELECT action, result, details FROM audit_log ORDER BY id').all() as Array<{
      action: string;
      result: string;
      details: string;
    }>;

  before(async () => {
    cell = await openTestCell();
    await trust('test', publicKeyPem(trustedPair.publicKey));
  });
  after(() => cell.close());
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'pic-catalog-'));
    // A fresh "highest accepted" per test: each test is its own cell history.
    await cell.database.db.deleteFrom('settings').where('key', '=', INDEX_SETTING).execute();
    now = new Date();
    catalog = new StoreCatalog(cell.database.db, root, cell.audit, silentLogger, () => now);
  });

  it('accepts a catalog signed by a trusted key, verifies each manifest, and remembers the version', async () => {
    await writeTestCatalog(root, {
      version: 3,
      key: trustedPair.privateKey,
      manifests: [demoManifest('demo'), demoManifest('other')],
    });
    const view = await catalog.read();
    assert.ok(view.ok);
    assert.equal(view.index.signedBy, keyFingerprint(trustedPair.publicKey));
    assert.deepEqual(
      view.services.map((s) => [s.entry.id, s.manifest?.id, s.refusal]),
      [
        ['demo', 'demo', undefined],
        ['other', 'other', undefined],
      ],
    );
    assert.equal((await readSetting<AcceptedIndex>(cell.database.db, INDEX_SETTING))?.version, 3);
    // a re-read of the same version is fine
    assert.ok((await catalog.read()).ok);
  });

  it('refuses a missing bundle', async () => {
    await writeTestCatalog(root, {
      version: 1,
      key: trustedPair.privateKey,
      manifests: [demoManifest()],
      unsigned: true,
    });
    const r = refused(await catalog.read());
    assert.equal(r.code, 'missing_bundle');
  });

  it('refuses an index signed by a key the vault does not trust, naming the key', async () => {
    await writeTestCatalog(root, { version: 1, key: strangerPair.privateKey, manifests: [demoManifest()] });
    const r = refused(await catalog.read());
    assert.equal(r.code, 'untrusted_key');
    assert.match(r.reason, new RegExp(keyFingerprint(strangerPair.publicKey)));
    assert.equal(await readSetting(cell.database.db, INDEX_SETTING), undefined, 'a refused index is never remembered');
  });

  it('refuses an index changed after signing', async () => {
    await writeTestCatalog(root, {
      version: 1,
      key: trustedPair.privateKey,
      manifests: [demoManifest()],
      tamperIndex: (i) => (i.version = 99),
    });
    assert.equal(refused(await catalog.read()).code, 'signature_mismatch');
  });

  it('refuses a rollback to an older version than the one accepted, and accepts newer ones', async () => {
    await writeTestCatalog(root, { version: 5, key: trustedPair.privateKey, manifests: [demoManifest()] });
    assert.ok((await catalog.read()).ok);
    await writeTestCatalog(root, { version: 4, key: trustedPair.privateKey, manifests: [demoManifest()] });
    const r = refused(await catalog.read());
    assert.equal(r.code, 'rollback');
    assert.match(r.reason, /version 4, older than version 5/);
    await writeTestCatalog(root, { version: 6, key: trustedPair.privateKey, manifests: [demoManifest()] });
    assert.ok((await catalog.read()).ok);
    assert.equal((await catalog.highestAccepted())?.version, 6);
  });

  it('refuses another index claiming the accepted version; the same index again is fine', async () => {
    const expires = '2099-01-01T00:00:00Z';
    const both = [demoManifest(), demoManifest('other')];
    await writeTestCatalog(root, { version: 5, key: trustedPair.privateKey, manifests: [demoManifest()], expires });
    assert.ok((await catalog.read()).ok);
    const accepted = await catalog.highestAccepted();
    await writeTestCatalog(root, { version: 5, key: trustedPair.privateKey, manifests: both, expires });
    const r = refused(await catalog.read());
    assert.equal(r.code, 'version_reused');
    assert.match(r.reason, /version 5, which this cell already accepted with other contents/);
    assert.deepEqual(await catalog.highestAccepted(), accepted, 'the accepted index is unchanged');
    await writeTestCatalog(root, { version: 5, key: trustedPair.privateKey, manifests: [demoManifest()], expires });
    assert.ok((await catalog.read()).ok, 'the accepted index itself, read again');
    await writeTestCatalog(root, { version: 6, key: trustedPair.privateKey, manifests: both, expires });
    assert.ok((await catalog.read()).ok, 'the change under a higher version');
    assert.equal((await catalog.highestAccepted())?.version, 6);
  });

  it('refuses an expired index (freeze)', async () => {
    await writeTestCatalog(root, {
      version: 1,
      key: trustedPair.privateKey,
      manifests: [demoManifest()],
      expires: '2030-01-01T00:00:00Z',
    });
    now = new Date('2030-01-01T00:00:01Z');
    const r = refused(await catalog.read());
    assert.equal(r.code, 'expired');
    now = new Date('2029-12-31T23:59:59Z');
    assert.ok((await catalog.read()).ok);
  });

  it('refuses only the manifest that does not match the signed digest (mix-and-match), and manifest() throws for it', async () => {
    const changed = { ...demoManifest('other'), description: 'changed after signing' };
    await writeTestCatalog(root, {
      version: 1,
      key: trustedPair.privateKey,
      manifests: [demoManifest('demo'), demoManifest('other')],
      override: { other: JSON.stringify(changed) },
    });
    const view = await catalog.read();
    assert.ok(view.ok);
    assert.equal(view.services[0]!.manifest?.id, 'demo');
    assert.equal(view.services[1]!.refusal?.code, 'digest_mismatch');
    await assert.rejects(catalog.manifest('other'), (err: Error & { code?: string }) => err.code === 'digest_mismatch');
    assert.equal((await catalog.manifest('demo')).manifest.id, 'demo');
    await assert.rejects(catalog.manifest('absent'), (err: Error & { code?: string }) => err.code === 'not_listed');
  });

  it('rotates the store key without reinstalling: add the new key, sign with it, remove the old one', async () => {
    const next = generateStoreKeyPair();
    await writeTestCatalog(root, { version: 1, key: trustedPair.privateKey, manifests: [demoManifest()] });
    assert.ok((await catalog.read()).ok, 'the old key signs');
    await writeTestCatalog(root, { version: 2, key: next.privateKey, manifests: [demoManifest()] });
    assert.equal(refused(await catalog.read()).code, 'untrusted_key', 'not before the new key is trusted');
    await trust('next', publicKeyPem(next.publicKey));
    assert.ok((await catalog.read()).ok, 'both keys trusted: the new signature verifies');
    await cell.database.db.transaction().execute((trx) => deleteTrustKey(trx, 'test'));
    try {
      assert.ok((await catalog.read()).ok, 'the old key removed: still fine');
      await writeTestCatalog(root, { version: 3, key: trustedPair.privateKey, manifests: [demoManifest()] });
      assert.equal(refused(await catalog.read()).code, 'untrusted_key', 'the retired key signs nothing any more');
    } finally {
      await cell.database.db.transaction().execute((trx) => deleteTrustKey(trx, 'next'));
      await trust('test', publicKeyPem(trustedPair.publicKey));
    }
  });

  it('audits a refusal met while reading once, not on every poll', async () => {
    await writeTestCatalog(root, { version: 1, key: strangerPair.privateKey, manifests: [demoManifest()] });
    const before = auditActions().length;
    for (let i = 0; i < 3; i++) {
      const view = await catalog.read();
      await catalog.auditReadRefusal(refused(view) as never, 'admin', '127.0.0.1');
    }
    const added = auditActions().slice(before);
    assert.equal(added.length, 1);
    assert.equal(added[0]!.action, 'store.catalog.refused');
    assert.equal(added[0]!.result, 'denied');
    assert.equal(JSON.parse(added[0]!.details).refusal, 'untrusted_key');
  });
});

describe('seedTrustKey', () => {
  let cell: TestCell;
  let repo: string;
  before(async () => {
    cell = await openTestCell();
    repo = mkdtempSync(join(tmpdir(), 'pic-seed-'));
  });
  after(async () => {
    await cell.close();
    rmSync(repo, { recursive: true, force: true });
  });

  it('a FIFO in place of the repository key seeds nothing, at once (the start is not held up)', async () => {
    const fifoRepo = mkdtempSync(join(tmpdir(), 'pic-seed-fifo-'));
    try {
      mkdirSync(join(fifoRepo, 'services-index'));
      execFileSync('mkfifo', [join(fifoRepo, 'services-index', 'store.pub.pem')]);
      const started = performance.now();
      assert.equal(await seedTrustKey(cell.database.db, cell.audit, silentLogger, fifoRepo), undefined);
      assert.ok(performance.now() - started < 1000, 'refused without waiting for a writer');
      assert.deepEqual(await listTrustKeys(cell.database.db), []);
    } finally {
      rmSync(fifoRepo, { recursive: true, force: true });
    }
  });

  it('trusts the repository key once, as "pic-store", audited; not again after the admin removed every key', async () => {
    mkdirSync(join(repo, 'services-index'));
    writeFileSync(join(repo, 'services-index', 'store.pub.pem'), publicKeyPem(trustedPair.publicKey));
    const fp = await seedTrustKey(cell.database.db, cell.audit, silentLogger, repo);
    assert.equal(fp, keyFingerprint(trustedPair.publicKey));
    const keys = await listTrustKeys(cell.database.db);
    assert.deepEqual(
      keys.map((k) => [k.name, k.fingerprint]),
      [[SEED_KEY_NAME, fp]],
    );
    const entry = cell.database.sqlite
      .prepare("SELECT actor, action FROM audit_log WHERE action = 'store.trust_key.seed'")
      .get() as { actor: string };
    assert.equal(entry.actor, 'system');

    await cell.database.db.transaction().execute((trx) => deleteTrustKey(trx, SEED_KEY_NAME));
    assert.equal(await seedTrustKey(cell.database.db, cell.audit, silentLogger, repo), undefined);
    assert.deepEqual(await listTrustKeys(cell.database.db), []);
  });

  it('seeds nothing when the repository ships no key (it ships none: see services-index/README.md)', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'pic-seed-none-'));
    const other = await openTestCell();
    try {
      assert.equal(await seedTrustKey(other.database.db, other.audit, silentLogger, empty), undefined);
      assert.deepEqual(await listTrustKeys(other.database.db), []);
    } finally {
      await other.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
