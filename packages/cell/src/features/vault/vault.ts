import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql, type Kysely, type Transaction } from 'kysely';
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import type { Db } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import type { SubsystemStatus } from '../status/service.js';
import {
  KEY_FILE,
  NEW_KEY_FILE,
  NEXT_KEY_FILE,
  VaultError,
  keyFileText,
  parseKeyFile,
  readKeyFile,
  replaceDurably,
  writeKeyFileDurably,
} from './key-file.js';
import {
  countByRecipient,
  countSecrets,
  deleteSecret,
  findCiphertext,
  insertState,
  listCiphertexts,
  listSecretInfo,
  readState,
  recordRotation,
  reencryptSecret,
  upsertSecret,
} from './queries.js';

export { VaultError } from './key-file.js';

/** Names: lowercase path-like (`ca/key`, `certs/<serial>/key`, `peers/alice/wg`). */
const SECRET_NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;
const MAX_NAME = 200;
/** The vault's own secrets (retired identities) live under this prefix; features cannot write there. */
const RESERVED_PREFIX = 'vault/';
const RETIRED_PREFIX = 'vault/retired/';

export interface SecretInfo {
  name: string;
  /** Plaintext length in bytes. */
  size: number;
  recipient: string;
  created_at: string;
  updated_at: string;
}

export interface RotationResult {
  recipient: string;
  previous_recipient: string;
  /** Secrets re-encrypted (including the vault's own retired identities). */
  secrets: number;
  generation: number;
}

export interface RotateOptions {
  /**
   * Runs inside the rotation's transaction after every secret was re-encrypted, before commit:
   * the caller's own rows (its audit entry) commit with the rotation or not at all.
   */
  inTransaction?: (trx: Transaction<Database>, result: RotationResult) => void | Promise<void>;
}

/** A point inside a key rotation where a hook may run (see `VaultHooks`). */
export type RotationPoint = 'midway' | 'committed';

/**
 * Seams for tests: the crash tests (test/e2e/vault-rotation.test.ts) start the cell through
 * test/support/rotation-pause-cell.ts, which passes a hook that stops a rotation at a point for good.
 * The product passes none.
 */
export interface VaultHooks {
  /** Awaited when a rotation reaches `point`: half the rows re-encrypted, or just committed. */
  rotationPoint?(point: RotationPoint): Promise<void>;
}

export interface OpenVaultOptions {
  dataDir: string;
  db: Db;
  logger: Logger;
  hooks?: VaultHooks;
}

type Plaintext = string | Uint8Array;

function checkName(name: string, allowReserved = false): void {
  if (typeof name !== 'string' || name.length > MAX_NAME || !SECRET_NAME.test(name)) {
    throw new VaultError(
      `invalid secret name ${JSON.stringify(name)}: use lowercase letters, digits, ".", "_", "-" and "/"`,
    );
  }
  if (!allowReserved && name.startsWith(RESERVED_PREFIX)) {
    throw new VaultError(`secret names under "${RESERVED_PREFIX}" belong to the vault itself`);
  }
}

function assertTransaction(trx: Kysely<Database>): asserts trx is Transaction<Database> {
  // Reading the active recipient and writing the row must share one transaction, or a rotation could fall between.
  if (!trx.isTransaction) throw new VaultError('pass the open transaction (ctx.trx), not the database handle');
}

const toBytes = (p: Plaintext): Uint8Array => (typeof p === 'string' ? new TextEncoder().encode(p) : p);
/** better-sqlite3 binds Buffers (not plain Uint8Arrays) as BLOBs. */
const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

async function encryptTo(recipient: string, data: Uint8Array): Promise<Uint8Array> {
  const encrypter = new Encrypter();
  encrypter.addRecipient(recipient);
  return encrypter.encrypt(data);
}

async function activeRecipient(executor: Kysely<Database>): Promise<string> {
  const state = await readState(executor);
  if (!state) throw new VaultError('the vault is not initialised (no vault_state row)');
  return state.recipient;
}

/**
 * The cell's secret store. Every secret at rest is an age ciphertext in `vault_secrets`, encrypted
 * to the recipient recorded in `vault_state`; the identity that decrypts it is the file
 * `<dataDir>/vault.key` (mode 0600). Retired identities are kept as secrets themselves, so files
 * encrypted before a rotation (archives, backups) still decrypt.
 *
 * Transactions: `put`/`delete`/`get` take the caller's `trx` as their last argument; without it they
 * use their own (which inside a feature's transaction would wait on that transaction forever).
 */
export class Vault {
  /** recipient → identity, for every identity this vault can decrypt with (active and retired). */
  private readonly identities = new Map<string, string>();
  private readonly decrypters = new Map<string, Decrypter>();
  private anyDecrypter: Decrypter | undefined;
  private active: string;
  private rotations: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Db,
    readonly dataDir: string,
    private readonly logger: Logger,
    recipient: string,
    identity: string,
    private readonly hooks: VaultHooks = {},
  ) {
    this.active = recipient;
    this.learn(recipient, identity);
  }

  /** Internal: use `openVault`. */
  static async create(opts: OpenVaultOptions, recipient: string, identity: string): Promise<Vault> {
    const vault = new Vault(opts.db, opts.dataDir, opts.logger, recipient, identity, opts.hooks);
    await vault.loadRetired();
    await vault.checkEveryRecipientKnown();
    return vault;
  }

  /** The cell's age recipient (`age1…`): anyone may encrypt to it; only this cell can decrypt. */
  get recipient(): string {
    return this.active;
  }

  private get keyPath(): string {
    return join(this.dataDir, KEY_FILE);
  }

  private get nextKeyPath(): string {
    return join(this.dataDir, NEXT_KEY_FILE);
  }

  private learn(recipient: string, identity: string): void {
    if (this.identities.get(recipient) === identity) return;
    this.identities.set(recipient, identity);
    const decrypter = new Decrypter();
    decrypter.addIdentity(identity);
    this.decrypters.set(recipient, decrypter);
    this.anyDecrypter = undefined;
  }

  private forget(recipient: string): void {
    this.identities.delete(recipient);
    this.decrypters.delete(recipient);
    this.anyDecrypter = undefined;
  }

  private async decryptFrom(recipient: string, ciphertext: Uint8Array, what: string): Promise<Uint8Array> {
    const decrypter = this.decrypters.get(recipient);
    if (!decrypter) throw new VaultError(`${what} is encrypted to ${recipient}, an identity this vault does not hold`);
    return decrypter.decrypt(ciphertext, 'uint8array');
  }

  // ---- secrets ----

  /**
   * Stores (or replaces) a secret. With `trx` it is written inside the caller's transaction and
   * commits with the caller's rows; without, in a transaction of its own. (Inside a transaction,
   * always pass it: a write of its own would wait on the open transaction forever.)
   */
  async put(name: string, plaintext: Plaintext, trx?: Transaction<Database>): Promise<void> {
    if (trx) assertTransaction(trx);
    checkName(name);
    if (trx) await this.write(trx, name, plaintext);
    else await this.db.transaction().execute((own) => this.write(own, name, plaintext));
  }

  private async write(trx: Transaction<Database>, name: string, plaintext: Plaintext): Promise<void> {
    // The recipient is read inside the transaction: a rotation commits wholly before or after it.
    const recipient = await activeRecipient(trx);
    const bytes = toBytes(plaintext);
    const ciphertext = asBuffer(await encryptTo(recipient, bytes));
    await upsertSecret(trx, { name, ciphertext, recipient, size: bytes.byteLength }, nowIso());
  }

  /** The secret as UTF-8 text, or undefined when there is none by that name. Pass `trx` inside a transaction. */
  async get(name: string, executor: Kysely<Database> = this.db): Promise<string | undefined> {
    const bytes = await this.getBytes(name, executor);
    return bytes && new TextDecoder().decode(bytes);
  }

  async getBytes(name: string, executor: Kysely<Database> = this.db): Promise<Uint8Array | undefined> {
    checkName(name, true);
    const row = await findCiphertext(executor, name);
    return row ? this.decryptFrom(row.recipient, row.ciphertext, `secret "${name}"`) : undefined;
  }

  /** Deletes a secret (inside the caller's transaction with `trx`); false when there was none. */
  async delete(name: string, trx?: Transaction<Database>): Promise<boolean> {
    if (trx) assertTransaction(trx);
    checkName(name);
    return deleteSecret(trx ?? this.db, name);
  }

  /**
   * Names and metadata only, never a plaintext; those under `prefix` when given (e.g. a service's
   * secrets). Pass `trx` inside a transaction.
   */
  async list(executor: Kysely<Database> = this.db, prefix?: string): Promise<SecretInfo[]> {
    return listSecretInfo(executor, prefix);
  }

  // ---- whole files ----

  /** Encrypts a file's bytes to the cell's recipient (audit archives, backups). */
  async encryptBytes(data: Uint8Array): Promise<Uint8Array> {
    return encryptTo(this.active, data);
  }

  /** Decrypts bytes encrypted to the cell's current identity or any identity it has retired. */
  async decryptBytes(ciphertext: Uint8Array): Promise<Uint8Array> {
    if (!this.anyDecrypter) {
      const decrypter = new Decrypter();
      // Current first: most files were encrypted to it, and each identity tried costs a key agreement.
      decrypter.addIdentity(this.identities.get(this.active)!);
      for (const [recipient, identity] of this.identities)
        if (recipient !== this.active) decrypter.addIdentity(identity);
      this.anyDecrypter = decrypter;
    }
    return this.anyDecrypter.decrypt(ciphertext, 'uint8array');
  }

  // ---- rotation ----

  /**
   * Re-encrypts every secret to a new identity in one transaction. Crash-safe by ordering:
   * 1. the new identity is written to vault.key.next (0600, fsync);
   * 2. one transaction re-encrypts every secret, stores the old identity as a retired secret and
   *    records the new recipient in vault_state (committed with synchronous=FULL);
   * 3. vault.key.next is renamed over vault.key.
   * A crash before 2 commits leaves the database on the old key (openVault discards .next); a crash
   * after it leaves .next matching the database (openVault finishes the rename). Rotations queue.
   */
  rotate(opts: RotateOptions = {}): Promise<RotationResult> {
    const run = this.rotations.then(() => this.rotateNow(opts));
    this.rotations = run.catch(() => undefined);
    return run;
  }

  private async rotateNow(opts: RotateOptions): Promise<RotationResult> {
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    writeKeyFileDurably(this.nextKeyPath, keyFileText(identity, recipient));
    // Known before any row is encrypted to it, so reads during and right after the commit succeed.
    this.learn(recipient, identity);

    const previousSync = await this.synchronous();
    await sql`PRAGMA synchronous = FULL`.execute(this.db); // the commit must survive power loss before the rename
    let result: RotationResult;
    try {
      result = await this.db.transaction().execute(async (trx) => {
        const state = await readState(trx);
        if (!state) throw new VaultError('the vault is not initialised (no vault_state row)');
        const previousIdentity = this.identities.get(state.recipient);
        if (!previousIdentity)
          throw new VaultError(`the vault does not hold the identity for its own recipient ${state.recipient}`);

        const rows = await listCiphertexts(trx);
        const now = nowIso();
        let done = 0;
        for (const row of rows) {
          const plaintext = await this.decryptFrom(row.recipient, row.ciphertext, `secret "${row.name}"`);
          const ciphertext = asBuffer(await encryptTo(recipient, plaintext));
          await reencryptSecret(trx, row.name, ciphertext, recipient, now);
          if (++done === Math.ceil(rows.length / 2)) await this.hooks.rotationPoint?.('midway');
        }
        const retired = toBytes(previousIdentity);
        const retiredName = RETIRED_PREFIX + state.recipient;
        const retiredCiphertext = asBuffer(await encryptTo(recipient, retired));
        const retiredRow = { name: retiredName, ciphertext: retiredCiphertext, recipient, size: retired.byteLength };
        await upsertSecret(trx, retiredRow, now);
        const generation = state.generation + 1;
        await recordRotation(trx, recipient, generation, now);
        const outcome = { recipient, previous_recipient: state.recipient, secrets: rows.length, generation };
        await opts.inTransaction?.(trx, outcome);
        return outcome;
      });
    } catch (err) {
      await this.restoreSynchronous(previousSync);
      // Rolled back: nothing is encrypted to the new identity, so its file goes.
      if ((await activeRecipient(this.db)) !== recipient) {
        rmSync(this.nextKeyPath, { force: true });
        this.forget(recipient);
      }
      throw err;
    }
    await this.restoreSynchronous(previousSync);
    this.active = recipient;
    this.anyDecrypter = undefined;
    await this.hooks.rotationPoint?.('committed');
    replaceDurably(this.nextKeyPath, this.keyPath);
    this.logger.info('vault: key rotated', {
      recipient,
      previous_recipient: result.previous_recipient,
      secrets: result.secrets,
    });
    return result;
  }

  private async synchronous(): Promise<number> {
    const { rows } = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(this.db);
    return rows[0]?.synchronous ?? 1;
  }

  private async restoreSynchronous(level: number): Promise<void> {
    await sql.raw(`PRAGMA synchronous = ${Number(level)}`).execute(this.db);
  }

  // ---- start-up ----

  private async loadRetired(): Promise<void> {
    const rows = await listCiphertexts(this.db, RETIRED_PREFIX);
    // Retired identities are normally all encrypted to the current one; loop in case one needs another.
    let pending = rows;
    while (pending.length > 0) {
      const left = pending.filter((r) => !this.decrypters.has(r.recipient));
      for (const row of pending.filter((r) => this.decrypters.has(r.recipient))) {
        const identity = new TextDecoder().decode(
          await this.decryptFrom(row.recipient, row.ciphertext, `secret "${row.name}"`),
        );
        this.learn(await identityToRecipient(identity), identity);
      }
      if (left.length === pending.length) break;
      pending = left;
    }
  }

  /** Refuses to start when a secret is encrypted to an identity the vault does not hold. */
  private async checkEveryRecipientKnown(): Promise<void> {
    const groups = await countByRecipient(this.db);
    const unknown = groups.filter((g) => !this.identities.has(g.recipient));
    if (unknown.length > 0) {
      const list = unknown.map((g) => `${g.count} to ${g.recipient}`).join(', ');
      throw new VaultError(
        `secrets in the database are encrypted to identities this vault does not hold (${list}); restore the matching vault.key`,
      );
    }
  }

  /** For GET /api/status. */
  async status(): Promise<SubsystemStatus> {
    const state = await readState(this.db);
    return {
      state: 'ok',
      recipient: this.active,
      secrets: await countSecrets(this.db),
      generation: state?.generation ?? 1,
      rotated_at: state?.rotated_at ?? null,
    };
  }
}

/**
 * Opens the vault at start-up: creates the identity on first start, finishes or discards a
 * rotation a crash interrupted, and refuses (VaultError) a key file that is loose, missing, or
 * belongs to another database.
 */
export async function openVault(opts: OpenVaultOptions): Promise<Vault> {
  const { dataDir, db, logger } = opts;
  const keyPath = join(dataDir, KEY_FILE);
  const nextPath = join(dataDir, NEXT_KEY_FILE);
  const newPath = join(dataDir, NEW_KEY_FILE);
  rmSync(newPath, { force: true }); // a first start that crashed before its rename

  const state = await readState(db);
  let identity = readKeyFile(keyPath);

  if (!state) {
    // No rotation can have committed without a state row: a leftover .next is meaningless.
    rmSync(nextPath, { force: true });
    if (identity) {
      logger.warn('vault: using the existing key file for a new database', { file: keyPath });
    } else {
      identity = await generateIdentity();
      writeKeyFileDurably(newPath, keyFileText(identity, await identityToRecipient(identity)));
      replaceDurably(newPath, keyPath);
    }
    const recipient = await identityToRecipient(identity);
    await insertState(db, recipient, nowIso());
    logger.info('vault: identity ready', { recipient, file: keyPath });
    return Vault.create(opts, recipient, identity);
  }

  if (existsSync(nextPath)) {
    let next: string | undefined;
    try {
      next = parseKeyFile(readFileSync(nextPath, 'utf8'), nextPath);
    } catch {
      next = undefined; // a .next that was still being written: its rotation never reached the database
    }
    if (next && (await identityToRecipient(next)) === state.recipient) {
      readKeyFile(nextPath); // the mode check, before it becomes the key
      replaceDurably(nextPath, keyPath);
      identity = next;
      logger.warn('vault: finished a key rotation that was interrupted after it committed', {
        recipient: state.recipient,
      });
    } else {
      rmSync(nextPath, { force: true });
      logger.warn('vault: discarded the new key of a rotation that did not commit; secrets stay on the current key', {
        recipient: state.recipient,
      });
    }
  }

  if (!identity) {
    throw new VaultError(
      `the vault key ${keyPath} is missing, but this database's secrets are encrypted to ${state.recipient}: restore vault.key from a backup of this cell`,
    );
  }
  const recipient = await identityToRecipient(identity);
  if (recipient !== state.recipient) {
    throw new VaultError(
      `${keyPath} is the identity of ${recipient}, but this database's secrets are encrypted to ${state.recipient}: the key file belongs to another database`,
    );
  }
  return Vault.create(opts, recipient, identity);
}
