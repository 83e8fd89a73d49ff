import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Passwords are hashed with scrypt (memory-hard, in node:crypto, no native addon to build).
 * Format: scrypt$N$r$p$salt$hash (base64url), so parameters can be raised later.
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

const isPositiveInt = (text: string) => /^[1-9]\d{0,9}$/.test(text);

/** False for a wrong password and for any stored value that is not a well-formed scrypt hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
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
  await verifyPassword(password, await dummyHash);
}
