import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ROTATION_PAUSE_CELL } from '../support/rotation-pause-cell.js';
import { ADMIN, ApiClient, completeSetup, IDENTITY } from '../support/client.js';
import { withCellDb } from '../support/db.js';
import { decryptAll, loadAge, readIdentity, secretRows, tempFile, verifyCert, type Age } from './vault-helpers.js';

/** Secrets seeded straight into the database (as age ciphertexts to the cell's recipient), so the rotation has many to do. */
const SEEDED = 1200;

async function waitFor(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function kill(cell: CellProcess): Promise<void> {
  const exited = new Promise((resolve) => cell.child.once('exit', resolve));
  cell.child.kill('SIGKILL');
  await exited;
  assert.equal(cell.child.signalCode, 'SIGKILL');
}

const recordedRecipient = (dataDir: string): string =>
  withCellDb(
    dataDir,
    (db) => (db.prepare('SELECT recipient FROM vault_state WHERE id = 1').get() as { recipient: string }).recipient,
  );

/**
 * Crash safety of POST /api/vault/rotate: the real cell process is killed with SIGKILL during a
 * rotation of many secrets, restarted, and every secret is read back with the key file it left.
 *
 * Two cases start the cell through test/support/rotation-pause-cell.ts, which injects a vault hook
 * (VaultHooks.rotationPoint) driven by PIC_TEST_VAULT_ROTATION_PAUSE; the hook parks the rotation at an exact point — half the secrets
 * re-encrypted inside the open transaction, or just after the commit before the key file is
 * renamed — so the SIGKILL lands there every time. The third case kills at an arbitrary moment, with no hook.
 */
describe('vault rotation survives SIGKILL (real cell process)', () => {
  let dataDir: string;
  let tmp: string;
  let age: Age;
  let caPem: string;
  /** name → plaintext of every secret whose plaintext the test knows (seeded ones and issued certificate keys). */
  const expected = new Map<string, string>();
  /** How long a rotation took to reach its commit (measured in the second case), to aim the third one's kill. */
  let commitMs = 2000;

  async function start(env: Record<string, string> = {}): Promise<{ cell: CellProcess; api: ApiClient }> {
    const main = env['PIC_TEST_VAULT_ROTATION_PAUSE'] ? ROTATION_PAUSE_CELL : undefined;
    const cell = await startCellProcess({ dataDir, env, ...(main ? { main } : {}) });
    const api = new ApiClient(cell.url);
    assert.equal((await api.login(ADMIN.username, ADMIN.password)).status, 200);
    return { cell, api };
  }

  /** Every secret decrypts with the key file alone and equals what was stored; all rows are on one recipient. */
  async function assertEverySecretReadsBack(recipient: string): Promise<void> {
    const plain = await decryptAll(age, dataDir);
    for (const [name, value] of expected) assert.equal(plain.get(name), value, `secret ${name}`);
    assert.ok(plain.has('ca/key'), 'the CA key is still there');
    const rows = secretRows(dataDir);
    assert.ok(rows.length >= expected.size + 1);
    assert.deepEqual(
      [...new Set(rows.map((r) => r.recipient))],
      [recipient],
      'every row is encrypted to the recorded recipient',
    );
    assert.equal(await age.identityToRecipient(readIdentity(dataDir)), recipient, 'vault.key matches the database');
    assert.ok(!existsSync(join(dataDir, 'vault.key.next')), 'no vault.key.next left over');
  }

  /** The restarted cell's CA still signs certificates that chain to the original CA certificate. */
  async function assertCaStillSigns(api: ApiClient): Promise<void> {
    const res = await api.post('/api/vault/certs', {
      name: `check-${randomBytes(3).toString('hex')}.${IDENTITY.domain}`,
      type: 'server',
      days: 1,
    });
    assert.equal(res.status, 201, res.text);
    expected.set(`certs/${res.body.certificate.serial}/key`, res.body.private_key_pem);
    assert.match(await verifyCert(tmp, tempFile(tmp, 'ca.pem', caPem), res.body.certificate_pem), /: OK/);
  }

  before(async () => {
    age = await loadAge();
    dataDir = mkdtempSync(join(tmpdir(), 'pic-vault-crash-'));
    tmp = mkdtempSync(join(tmpdir(), 'pic-vault-crash-files-'));
    const cell = await startCellProcess({ dataDir });
    const api = new ApiClient(cell.url);
    await completeSetup(api);
    for (const host of ['www', 'mail', 'files']) {
      const res = await api.post('/api/vault/certs', { name: `${host}.${IDENTITY.domain}`, type: 'server' });
      assert.equal(res.status, 201, res.text);
      expected.set(`certs/${res.body.certificate.serial}/key`, res.body.private_key_pem);
    }
    caPem = (await api.get('/api/vault/ca.crt')).text;
    const recipient = (await api.get('/api/vault/age-public-key')).body.recipient as string;
    await cell.stop();

    const encrypter = new age.Encrypter();
    encrypter.addRecipient(recipient);
    const rows: unknown[][] = [];
    const now = new Date().toISOString();
    for (let i = 0; i < SEEDED; i++) {
      const name = `seed/${String(i).padStart(4, '0')}`;
      const value = `secret-${i}-${randomBytes(16).toString('hex')}`;
      expected.set(name, value);
      rows.push([name, Buffer.from(await encrypter.encrypt(value)), recipient, Buffer.byteLength(value), now, now]);
    }
    withCellDb(dataDir, (db) => {
      const insert = db.prepare(
        'INSERT INTO vault_secrets (name, ciphertext, recipient, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      db.exec('BEGIN');
      for (const row of rows) insert.run(...row);
      db.exec('COMMIT');
    });
    await assertEverySecretReadsBack(recipient);
  });
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  it('killed halfway through re-encrypting: nothing committed, the restart discards the new key', async () => {
    const before = recordedRecipient(dataDir);
    const { cell, api } = await start({ PIC_TEST_VAULT_ROTATION_PAUSE: 'midway' });
    const rotation = api.post('/api/vault/rotate').catch((err: Error) => err);
    await waitFor('the rotation to reach its midpoint', () =>
      cell.output().includes('PIC_TEST vault rotation paused: midway'),
    );
    // Half the rows are re-encrypted inside the open transaction; from outside, none has changed.
    assert.ok(existsSync(join(dataDir, 'vault.key.next')), 'the new identity was written first');
    assert.equal(recordedRecipient(dataDir), before);
    assert.ok(secretRows(dataDir).every((r) => r.recipient === before));
    await kill(cell);
    assert.ok((await rotation) instanceof Error, 'the rotation request never answered');

    const { cell: again, api: api2 } = await start();
    try {
      assert.match(again.output(), /discarded the new key of a rotation that did not commit/);
      assert.equal((await api2.get('/api/vault/age-public-key')).body.recipient, before);
      await assertCaStillSigns(api2);
    } finally {
      await again.stop();
    }
    await assertEverySecretReadsBack(before);
  });

  it('killed after the commit but before the key file was renamed: the restart finishes the rotation', async () => {
    const before = recordedRecipient(dataDir);
    const oldIdentity = readIdentity(dataDir);
    const { cell, api } = await start({ PIC_TEST_VAULT_ROTATION_PAUSE: 'committed' });
    const started = Date.now();
    const rotation = api.post('/api/vault/rotate').catch((err: Error) => err);
    await waitFor('the rotation to commit', () => cell.output().includes('PIC_TEST vault rotation paused: committed'));
    commitMs = Date.now() - started;
    // The database is on the new key while vault.key still holds the old one: the window a crash must not break.
    const committed = recordedRecipient(dataDir);
    assert.notEqual(committed, before);
    assert.equal(await age.identityToRecipient(readIdentity(dataDir)), before);
    assert.equal(await age.identityToRecipient(readIdentity(dataDir, 'vault.key.next')), committed);
    await kill(cell);
    assert.ok((await rotation) instanceof Error);

    const { cell: again, api: api2 } = await start();
    try {
      assert.match(again.output(), /finished a key rotation that was interrupted after it committed/);
      assert.equal((await api2.get('/api/vault/age-public-key')).body.recipient, committed);
      await assertCaStillSigns(api2);
    } finally {
      await again.stop();
    }
    await assertEverySecretReadsBack(committed);
    // The old identity is kept (encrypted to the new one), for files encrypted before the rotation.
    assert.equal((await decryptAll(age, dataDir)).get(`vault/retired/${before}`), oldIdentity);
  });

  it('killed at an arbitrary moment (no test hook): whichever side of the commit, every secret reads back', async (t) => {
    const before = recordedRecipient(dataDir);
    const { cell, api } = await start();
    const started = Date.now();
    const rotation = api.post('/api/vault/rotate').catch((err: Error) => err);
    await waitFor('the rotation to begin', () => existsSync(join(dataDir, 'vault.key.next')));
    // Anywhere from the start to a little past the commit the second case measured.
    await sleep(Math.floor(Math.random() * commitMs * 1.2));
    await kill(cell);
    const outcome = await rotation;
    const elapsed = Date.now() - started;

    const { cell: again, api: api2 } = await start();
    let recipient: string;
    let afterCrash: string;
    try {
      afterCrash = recipient = (await api2.get('/api/vault/age-public-key')).body.recipient;
      assert.equal(afterCrash, recordedRecipient(dataDir));
      await assertCaStillSigns(api2);
      // And a rotation after the crash runs to the end.
      const full = await api2.post('/api/vault/rotate');
      assert.equal(full.status, 200, full.text);
      assert.ok(full.body.secrets >= SEEDED);
      recipient = full.body.recipient;
    } finally {
      await again.stop();
    }
    await assertEverySecretReadsBack(recipient);
    // For the record: where the kill landed (the test passes either way, which is the point).
    const landed =
      outcome instanceof Error
        ? 'before the response'
        : `after the response (${(outcome as { status: number }).status})`;
    t.diagnostic(
      `killed ${elapsed} ms into the rotation, ${landed}; the rotation was ${before === afterCrash ? 'rolled back' : 'completed'}`,
    );
  });
});
