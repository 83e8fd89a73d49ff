import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { generatePassword } from './tokens.js';
import { FairQueue } from './fair-queue.js';
import { errors, HttpError } from '../http/errors.js';

/**
 * Passwords are hashed with scrypt (memory-hard, in node:crypto, no native addon to build).
 * Format: scrypt$N$r$p$salt$hash (base64url), so parameters can be raised later.
 *
 * A password the cell generated itself (generateLoginPassword: at least 128 bits of entropy) is
 * stored as `sha256$<hash>` instead, like the cell's other high-entropy tokens: no guessing attack
 * on 2^128 candidates is helped by a slow hash, and it costs microseconds instead of ~100 ms per
 * peer added. A password a person chose always takes scrypt. The prefix tells verifyPassword which.
 */
const N = 1 << 15;
const r = 8;
const p = 1;
const KEYLEN = 32;
const MAXMEM = 64 * 1024 * 1024;

/**
 * Every scrypt of the process goes through this queue. Each one holds a libuv pool thread and a
 * core for ~100 ms; unbounded, a burst of logins filled the pool (4 threads) and the queue behind
 * it, and a real login waited 18 s. Now at most one hash per core runs, waiting hashes are served
 * round-robin by source (the client address), and past the bounds a check is refused at once with
 * 503 `busy` (Retry-After: 1). The bounds let a full login budget of one source (rate_limit.
 * login_failures, 10 by default) wait, and a few sources more; the per-source login limit cuts a
 * burst down to that before anything reaches the queue. One queue per process, as the pool is.
 */
export const HASH_WAITING_PER_SOURCE = 16;
export const HASH_WAITING_TOTAL = 48;
export const passwordQueue = new FairQueue(
  Math.max(1, Math.min(4, availableParallelism())),
  HASH_WAITING_PER_SOURCE,
  HASH_WAITING_TOTAL,
  () => errors.busy(1, 'too many password checks at once; try again in a moment'),
);

/** Who a hash is computed for: the client address for requests, 'cell' for the cell's own work. */
export const CELL_SOURCE = 'cell';

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions, source: string): Promise<Buffer> {
  return passwordQueue.run(
    source,
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scryptCb(password.normalize('NFKC'), salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
      ),
  );
}

export async function hashPassword(password: string, source = CELL_SOURCE): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { N, r, p, maxmem: MAXMEM }, source);
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Characters of a generated login password: log2(54) × 23 ≈ 132 bits, over the 128 the fast hash needs. */
export const GENERATED_PASSWORD_LENGTH = 23;
/** Bits of entropy of a password from generatePassword's 54-character alphabet. */
export const generatedPasswordBits = (length: number) => length * Math.log2(54);

const SHA256_PREFIX = 'sha256$';
const sha256Of = (password: string) => createHash('sha256').update(password.normalize('NFKC')).digest();

/**
 * A login password the cell generates and shows once, with its stored hash. Only here does a
 * password get the fast hash: its entropy is the cell's own doing (≥ 128 bits), never a person's.
 */
export function generateLoginPassword(): { password: string; hash: string } {
  const password = generatePassword(GENERATED_PASSWORD_LENGTH);
  return { password, hash: SHA256_PREFIX + sha256Of(password).toString('base64url') };
}

const isPositiveInt = (text: string) => /^[1-9]\d{0,9}$/.test(text);

/**
 * False for a wrong password and for any stored value that is not a well-formed hash (scrypt, or
 * sha256 for generated passwords). A sha256 check still spends one scrypt's time, so how fast a
 * login fails does not tell which kind of account (or whether one) is behind a username.
 */
export async function verifyPassword(password: string, stored: string, source = CELL_SOURCE): Promise<boolean> {
  if (stored.startsWith(SHA256_PREFIX)) {
    const expected = Buffer.from(stored.slice(SHA256_PREFIX.length), 'base64url');
    const ok = expected.length === 32 && timingSafeEqual(sha256Of(password), expected);
    await burnPasswordCheck(password, source);
    return ok;
  }
  return verifyScrypt(password, stored, source);
}

async function verifyScrypt(password: string, stored: string, source: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, rr, pp, salt, hash] = parts as [string, string, string, string, string, string];
  if (![n, rr, pp].every(isPositiveInt)) return false;
  const expected = Buffer.from(hash, 'base64url');
  // An empty (or tiny) stored key would make any password "match": refuse it.
  if (expected.length < 16 || salt.length === 0) return false;
  let key: Buffer;
  try {
    key = await scrypt(
      password,
      Buffer.from(salt, 'base64url'),
      expected.length,
      {
        N: Number(n),
        r: Number(rr),
        p: Number(pp),
        maxmem: MAXMEM,
      },
      source,
    );
  } catch (err) {
    if (err instanceof HttpError) throw err; // the queue is full: not a wrong password
    return false; // parameters scrypt refuses (N not a power of two, over the memory limit)
  }
  return timingSafeEqual(key, expected);
}

/** Spend the same time on unknown users as on known ones, so login timing does not reveal usernames. */
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string, source = CELL_SOURCE): Promise<void> {
  // a refused first hash (the queue was full) must not stay cached as the answer for good
  dummyHash ??= hashPassword('pic-dummy-password').catch((err: unknown) => {
    dummyHash = undefined;
    throw err;
  });
  await verifyScrypt(password, await dummyHash, source);
}
