import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { generatePassword } from './tokens.js';

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

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFKC'), salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { N, r, p, maxmem: MAXMEM });
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
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (stored.startsWith(SHA256_PREFIX)) {
    const expected = Buffer.from(stored.slice(SHA256_PREFIX.length), 'base64url');
    const ok = expected.length === 32 && timingSafeEqual(sha256Of(password), expected);
    await burnPasswordCheck(password);
    return ok;
  }
  return verifyScrypt(password, stored);
}

async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, rr, pp, salt, hash] = parts as [string, string, string, string, string, string];
  if (![n, rr, pp].every(isPositiveInt)) return false;
  const expected = Buffer.from(hash, 'base64url');
  // An empty (or tiny) stored key would make any password "match": refuse it.
  if (expected.length < 16 || salt.length === 0) return false;
  try {
    const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
      N: Number(n), r: Number(rr), p: Number(pp), maxmem: MAXMEM,
    });
    return timingSafeEqual(key, expected);
  } catch {
    return false; // parameters scrypt refuses (N not a power of two, over the memory limit)
  }
}

/** Spend the same time on unknown users as on known ones, so login timing does not reveal usernames. */
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword('pic-dummy-password');
  await verifyScrypt(password, await dummyHash);
}
