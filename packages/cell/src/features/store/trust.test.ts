import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStoreKeyPair, keyFingerprint, publicKeyPem } from '@pic/manifest';
import { silentLogger } from '../../lib/logger.js';
import { deleteTrustKey, listTrustKeys } from '../vault/trust-keys.js';
import { openTestCell, type TestCell } from './fixtures.test-support.js';
import { seedConfiguredKeys } from './trust.js';

describe('seedConfiguredKeys (cell.yaml store.trusted_keys)', () => {
  let cell: TestCell;
  let dir: string;
  const local = generateStoreKeyPair();
  const other = generateStoreKeyPair();
  before(async () => {
    cell = await openTestCell();
    dir = mkdtempSync(join(tmpdir(), 'pic-trust-'));
    writeFileSync(join(dir, 'local.pub.pem'), publicKeyPem(local.publicKey));
    writeFileSync(join(dir, 'other.pub.pem'), publicKeyPem(other.publicKey));
    writeFileSync(join(dir, 'private.pem'), local.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });
  after(async () => {
    await cell.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const names = async () => (await listTrustKeys(cell.database.db)).map((k) => [k.name, k.fingerprint]);

  it('trusts the key once under its name, audited; a second start changes nothing', async () => {
    const keys = [{ name: 'local-store', file: join(dir, 'local.pub.pem') }];
    assert.deepEqual(await seedConfiguredKeys(cell.database.db, cell.audit, silentLogger, keys), [
      keyFingerprint(local.publicKey),
    ]);
    assert.deepEqual(await names(), [['local-store', keyFingerprint(local.publicKey)]]);
    const entry = cell.database.sqlite
      .prepare("SELECT actor, target_id, details FROM audit_log WHERE action = 'store.trust_key.seed'")
      .get() as { actor: string; target_id: string; details: string };
    assert.equal(entry.actor, 'system');
    assert.equal(entry.target_id, 'local-store');
    assert.equal(JSON.parse(entry.details).fingerprint, keyFingerprint(local.publicKey));
    assert.deepEqual(await seedConfiguredKeys(cell.database.db, cell.audit, silentLogger, keys), []);
  });

  it('does not bring back a key the admin removed', async () => {
    await cell.database.db.transaction().execute((trx) => deleteTrustKey(trx, 'local-store'));
    assert.deepEqual(
      await seedConfiguredKeys(cell.database.db, cell.audit, silentLogger, [
        { name: 'local-store', file: join(dir, 'local.pub.pem') },
      ]),
      [],
    );
    assert.deepEqual(await names(), []);
  });

  it('skips, without failing, a missing file, a private key, a directory and a name taken by another key', async () => {
    const keys = [
      { name: 'missing', file: join(dir, 'nope.pem') },
      { name: 'private', file: join(dir, 'private.pem') },
      { name: 'a-dir', file: dir },
      { name: 'other', file: join(dir, 'other.pub.pem') },
    ];
    assert.deepEqual(await seedConfiguredKeys(cell.database.db, cell.audit, silentLogger, keys), [
      keyFingerprint(other.publicKey),
    ]);
    const again = generateStoreKeyPair();
    writeFileSync(join(dir, 'again.pub.pem'), publicKeyPem(again.publicKey));
    assert.deepEqual(
      await seedConfiguredKeys(cell.database.db, cell.audit, silentLogger, [
        { name: 'other', file: join(dir, 'again.pub.pem') },
      ]),
      [],
    );
    assert.deepEqual(await names(), [['other', keyFingerprint(other.publicKey)]]);
  });
});
