import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Decrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { openDatabase, type CellDatabase } from '../../db/database.js';
import { writeSetting } from '../../db/settings.js';
import type { Logger } from '../../lib/logger.js';
import { KEY_FILE, NEXT_KEY_FILE, keyFileText, parseKeyFile } from './key-file.js';
import { VaultError, openVault, type Vault } from './vault.js';

/** A logger that remembers what it was told, so tests can check the vault said what happened. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, data?: Record<string, unknown>) =>
    void lines.push(`${level} ${msg} ${JSON.stringify(data ?? {})}`);
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

const keyFileRecipient = async (dir: string, file = KEY_FILE) =>
  identityToRecipient(parseKeyFile(readFileSync(join(dir, file), 'utf8'), file));

const unique = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

describe('vault', () => {
  const dirs: string[] = [];
  let dir: string;
  let database: CellDatabase;
  let logger: ReturnType<typeof recordingLogger>;
  let vault: Vault;

  const open = () => openVault({ dataDir: dir, db: database.db, logger });
  /** Closes and reopens the database and the vault, as a restart would. */
  async function reopen(): Promise<Vault> {
    await database.close();
    database = openDatabase(join(dir, 'cell.db'));
    vault = await open();
    return vault;
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pic-vault-'));
    dirs.push(dir);
    database = openDatabase(join(dir, 'cell.db'));
    await database.migrate();
    logger = recordingLogger();
    vault = await open();
  });
  afterEach(async () => database.close());
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('creates an X25519 identity at first start: key file mode 0600, recipient recorded in the database', async () => {
    const path = join(dir, KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^# created: .+\n# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]{58}\n$/);
    assert.match(vault.recipient, /^age1[0-9a-z]{58}$/);
    assert.equal(await keyFileRecipient(dir), vault.recipient);
    const state = await database.db
      .selectFrom('vault_state')
      .select(['recipient', 'generation'])
      .executeTakeFirstOrThrow();
    assert.deepEqual(state, { recipient: vault.recipient, generation: 1 });
    // A second start uses the same identity.
    const again = await reopen();
    assert.equal(again.recipient, state.recipient);
  });

  it('puts, gets, lists (metadata only) and deletes secrets', async () => {
    await vault.put('peers/alice/wg', 'wg-private-key');
    await vault.put('bytes', Uint8Array.from([0, 1, 2, 255]));
    assert.equal(await vault.get('peers/alice/wg'), 'wg-private-key');
    assert.deepEqual(await vault.getBytes('bytes'), Uint8Array.from([0, 1, 2, 255]));
    assert.equal(await vault.get('missing'), undefined);

    await vault.put('peers/alice/wg', 'replaced');
    assert.equal(await vault.get('peers/alice/wg'), 'replaced');

    const list = await vault.list();
    assert.deepEqual(
      list.map((s) => [s.name, s.size, s.recipient]),
      [
        ['bytes', 4, vault.recipient],
        ['peers/alice/wg', 8, vault.recipient],
      ],
    );
    assert.ok(!JSON.stringify(list).includes('replaced'), 'the list carries no plaintext');

    assert.equal(await vault.delete('peers/alice/wg'), true);
    assert.equal(await vault.delete('peers/alice/wg'), false);
    assert.equal(await vault.get('peers/alice/wg'), undefined);
  });

  it('refuses bad names and the names reserved for the vault itself', async () => {
    for (const name of ['', 'Upper', '/lead', 'trail/', 'a//b', 'sp ace', 'x'.repeat(201)]) {
      await assert.rejects(vault.put(name, 'v'), VaultError, JSON.stringify(name));
    }
    await assert.rejects(vault.put('vault/retired/x', 'v'), /belong to the vault/);
    await assert.rejects(vault.delete('vault/retired/x'), /belong to the vault/);
  });

  it('put/delete with trx join the caller transaction: a rollback takes the secret with it', async () => {
    await database.db.transaction().execute(async (trx) => {
      await writeSetting(trx, 'feature.row', { id: 1 });
      await vault.put('feature/secret', 'committed-value', trx);
    });
    assert.equal(await vault.get('feature/secret'), 'committed-value');

    await assert.rejects(
      database.db.transaction().execute(async (trx) => {
        await vault.put('feature/other', 'rolled-back-value', trx);
        await vault.delete('feature/secret', trx);
        assert.equal(await vault.get('feature/other', trx), 'rolled-back-value', 'visible inside the transaction');
        throw new Error('feature failed');
      }),
      /feature failed/,
    );
    assert.equal(await vault.get('feature/other'), undefined);
    assert.equal(await vault.get('feature/secret'), 'committed-value');
    // The forms that take a transaction refuse the plain database handle (which would race a rotation).
    await assert.rejects(vault.put('x', 'y', database.db as never), /open transaction/);
  });

  it('leaves no plaintext in the database files (and the scan does find plaintext that is there)', async () => {
    const secrets = Array.from({ length: 20 }, (_, i) => unique(`secret-${i}`));
    for (const [i, s] of secrets.entries()) await vault.put(`raw/${i}`, s);
    await database.db.transaction().execute((trx) => vault.put('raw/in-trx', `${secrets[0]!}-trx`, trx));
    await vault.rotate();
    const control = unique('control');
    await writeSetting(database.db, 'test.control', control); // stored in the clear on purpose

    const scan = () => {
      const bytes = readdirSync(dir)
        .filter((f) => f.startsWith('cell.db'))
        .map((f) => readFileSync(join(dir, f)));
      const all = Buffer.concat(bytes);
      return (needle: string) => all.includes(Buffer.from(needle));
    };
    let has = scan(); // while open: the WAL holds the recent pages
    assert.ok(has(control), 'the scan finds a value that is stored in the clear');
    for (const s of secrets) assert.ok(!has(s), `plaintext found in the database files: ${s}`);
    assert.ok(!has(`${secrets[0]!}-trx`));
    await database.close(); // checkpoints the WAL into cell.db
    has = scan();
    assert.ok(has(control));
    for (const s of secrets) assert.ok(!has(s), `plaintext found after checkpoint: ${s}`);
    database = openDatabase(join(dir, 'cell.db'));
  });

  it('rotates: every secret re-encrypted to a new identity, the key file replaced, the old identity retired', async () => {
    const secrets = new Map(Array.from({ length: 25 }, (_, i) => [`rot/${i}`, unique(`v${i}`)] as const));
    for (const [name, value] of secrets) await vault.put(name, value);
    const before = vault.recipient;
    const oldFile = await vault.encryptBytes(new TextEncoder().encode('archived before rotation'));

    const result = await vault.rotate();
    assert.equal(result.previous_recipient, before);
    assert.notEqual(result.recipient, before);
    assert.equal(result.secrets, 25);
    assert.equal(result.generation, 2);
    assert.equal(vault.recipient, result.recipient);
    assert.equal(await keyFileRecipient(dir), result.recipient, 'vault.key now holds the new identity');
    assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(dir, NEXT_KEY_FILE)), 'no .next left behind');

    const rows = await database.db.selectFrom('vault_secrets').select(['name', 'recipient']).execute();
    assert.ok(
      rows.every((r) => r.recipient === result.recipient),
      'every row is encrypted to the new recipient',
    );
    assert.ok(
      rows.some((r) => r.name === `vault/retired/${before}`),
      'the old identity is kept as a secret',
    );
    for (const [name, value] of secrets) assert.equal(await vault.get(name), value);

    // Files encrypted before the rotation still decrypt, also after a restart; the new identity alone could not.
    const onlyNew = new Decrypter();
    onlyNew.addIdentity(parseKeyFile(readFileSync(join(dir, KEY_FILE), 'utf8'), KEY_FILE));
    await assert.rejects(onlyNew.decrypt(oldFile), /no identity matched/);
    assert.equal(new TextDecoder().decode(await vault.decryptBytes(oldFile)), 'archived before rotation');
    await reopen();
    assert.equal(new TextDecoder().decode(await vault.decryptBytes(oldFile)), 'archived before rotation');
    for (const [name, value] of secrets) assert.equal(await vault.get(name), value);

    // And again: retired identities are themselves re-encrypted and survive a second rotation.
    const second = await vault.rotate();
    assert.equal(second.generation, 3);
    await reopen();
    assert.equal(new TextDecoder().decode(await vault.decryptBytes(oldFile)), 'archived before rotation');
  });

  it('rolls a failed rotation back completely: same key, same ciphertexts, no .next file', async () => {
    await vault.put('keep/me', 'still-here');
    const before = vault.recipient;
    const rowBefore = await database.db
      .selectFrom('vault_secrets')
      .select(['ciphertext'])
      .where('name', '=', 'keep/me')
      .executeTakeFirstOrThrow();
    await assert.rejects(
      vault.rotate({
        inTransaction: () => {
          throw new Error('audit append failed');
        },
      }),
      /audit append failed/,
    );
    assert.equal(vault.recipient, before);
    assert.equal(await keyFileRecipient(dir), before);
    assert.ok(!existsSync(join(dir, NEXT_KEY_FILE)));
    const rowAfter = await database.db
      .selectFrom('vault_secrets')
      .select(['ciphertext'])
      .where('name', '=', 'keep/me')
      .executeTakeFirstOrThrow();
    assert.deepEqual(rowAfter.ciphertext, rowBefore.ciphertext);
    assert.equal(await vault.get('keep/me'), 'still-here');
    assert.equal(
      (await database.db.selectFrom('vault_state').select('generation').executeTakeFirstOrThrow()).generation,
      1,
    );
  });

  it('queues concurrent rotations, and writes during a rotation end up on the active key', async () => {
    for (let i = 0; i < 30; i++) await vault.put(`pre/${i}`, `pre-${i}`);
    const writes = Array.from({ length: 30 }, (_, i) => vault.put(`during/${i}`, `during-${i}`));
    const [a, b] = await Promise.all([vault.rotate(), vault.rotate(), ...writes]);
    assert.equal((a as { generation: number }).generation, 2);
    assert.equal((b as { generation: number }).generation, 3);
    assert.equal(await keyFileRecipient(dir), vault.recipient);
    const rows = await database.db.selectFrom('vault_secrets').select(['recipient']).execute();
    assert.ok(
      rows.every((r) => r.recipient === vault.recipient),
      'no row was left on a retired key',
    );
    for (let i = 0; i < 30; i++) {
      assert.equal(await vault.get(`pre/${i}`), `pre-${i}`);
      assert.equal(await vault.get(`during/${i}`), `during-${i}`);
    }
  });

  it('at start-up discards the .next key of a rotation that never committed', async () => {
    await vault.put('x', 'value-x');
    const current = vault.recipient;
    const stray = await generateIdentity();
    writeFileSync(join(dir, NEXT_KEY_FILE), keyFileText(stray, await identityToRecipient(stray)), { mode: 0o600 });
    await reopen();
    assert.equal(vault.recipient, current);
    assert.ok(!existsSync(join(dir, NEXT_KEY_FILE)));
    assert.ok(
      logger.lines.some((l) => l.includes('did not commit')),
      logger.lines.join('\n'),
    );
    assert.equal(await vault.get('x'), 'value-x');

    // A .next cut short while being written is discarded the same way.
    writeFileSync(join(dir, NEXT_KEY_FILE), '# created: 2026\n# public key: age1\nAGE-SECRET-KEY-1QQ', { mode: 0o600 });
    await reopen();
    assert.equal(vault.recipient, current);
    assert.ok(!existsSync(join(dir, NEXT_KEY_FILE)));
  });

  it('at start-up finishes a rotation that committed but did not rename its key file', async () => {
    await vault.put('y', 'value-y');
    const oldKey = join(dir, 'old.key');
    copyFileSync(join(dir, KEY_FILE), oldKey);
    const { recipient } = await vault.rotate();
    // Recreate the state a crash between commit and rename leaves: database on the new key, vault.key old, .next new.
    renameSync(join(dir, KEY_FILE), join(dir, NEXT_KEY_FILE));
    renameSync(oldKey, join(dir, KEY_FILE));
    chmodSync(join(dir, KEY_FILE), 0o600);
    await reopen();
    assert.equal(vault.recipient, recipient);
    assert.equal(await keyFileRecipient(dir), recipient);
    assert.ok(!existsSync(join(dir, NEXT_KEY_FILE)));
    assert.ok(
      logger.lines.some((l) => l.includes('interrupted after it committed')),
      logger.lines.join('\n'),
    );
    assert.equal(await vault.get('y'), 'value-y');
  });

  it('refuses to start on a key file others can read, naming the file and the fix', async () => {
    const path = join(dir, KEY_FILE);
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(path, mode);
      await assert.rejects(reopen(), (err: Error) => {
        assert.ok(err instanceof VaultError);
        assert.ok(err.message.includes(path), err.message);
        assert.ok(err.message.includes(mode.toString(8).padStart(4, '0')), err.message);
        assert.ok(err.message.includes('chmod 600'), err.message);
        return true;
      });
    }
    chmodSync(path, 0o600);
    await reopen(); // the control case
    chmodSync(path, 0o400);
    await reopen(); // read-only for the owner is fine too
  });

  it('refuses to start without its key file, or with the key file of another database', async () => {
    const recipient = vault.recipient;
    const path = join(dir, KEY_FILE);
    const saved = readFileSync(path);
    rmSync(path);
    await assert.rejects(
      reopen(),
      (err: Error) => err instanceof VaultError && /missing/.test(err.message) && err.message.includes(recipient),
    );
    assert.ok(!existsSync(path), 'a missing key is never silently replaced by a new one');

    const other = await generateIdentity();
    writeFileSync(path, keyFileText(other, await identityToRecipient(other)), { mode: 0o600 });
    await assert.rejects(reopen(), /belongs to another database/);

    writeFileSync(path, saved, { mode: 0o600 });
    await reopen();
    assert.equal(vault.recipient, recipient);
  });

  it('refuses to start when a secret is encrypted to an identity it does not hold', async () => {
    const stranger = await identityToRecipient(await generateIdentity());
    await database.db
      .insertInto('vault_secrets')
      .values({
        name: 'odd',
        ciphertext: Buffer.from('x'),
        recipient: stranger,
        size: 1,
        created_at: 'now',
        updated_at: 'now',
      })
      .execute();
    await assert.rejects(reopen(), (err: Error) => err instanceof VaultError && err.message.includes(stranger));
  });
});
