/**
 * WireGuard keys: X25519 through node:crypto, written the way `wg genkey` / `wg pubkey` print them
 * (the raw 32 bytes, standard base64, 44 characters ending in "=").
 *
 * Keys cross node:crypto as DER only, never as JWK: on this Node 20 / OpenSSL 3.0 build,
 * `KeyObject.export({ format: 'jwk' })` of X25519 keys intermittently deadlocks the process
 * (a futex wait in the main thread) after a few thousand calls. DER export has not.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';

export interface WireGuardKeyPair {
  privateKey: string;
  publicKey: string;
}

/** Canonical base64 of exactly 32 bytes: 43 significant characters, the last carrying 2 zero bits. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** RFC 8410 DER headers: PKCS#8 and SPKI of an X25519 key are these bytes followed by the raw 32. */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** True when `text` is a WireGuard key as `wg` writes and reads it (base64 of 32 bytes). */
export function isWireGuardKey(text: unknown): text is string {
  return typeof text === 'string' && KEY_PATTERN.test(text);
}

/** Throws (without echoing the value: it may be a secret) unless `text` is a WireGuard key. */
export function assertWireGuardKey(text: unknown, what = 'key'): asserts text is string {
  if (!isWireGuardKey(text)) throw new TypeError(`${what} is not a WireGuard key (base64 of 32 bytes)`);
}

function rawKey(der: Buffer, prefix: Buffer): Buffer {
  if (der.length !== prefix.length + 32 || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new Error('unexpected X25519 DER encoding from node:crypto');
  }
  return der.subarray(prefix.length);
}

/**
 * A new keypair. The private key is clamped as `wg genkey` clamps it (RFC 7748); clamping does not
 * change the public key, since X25519 clamps the scalar before using it.
 */
export function generateKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519', {
    privateKeyEncoding: { format: 'der', type: 'pkcs8' },
    publicKeyEncoding: { format: 'der', type: 'spki' },
  });
  const raw = Buffer.from(rawKey(privateKey, PKCS8_X25519_PREFIX));
  raw[0] = raw[0]! & 248;
  raw[31] = (raw[31]! & 127) | 64;
  return { privateKey: raw.toString('base64'), publicKey: rawKey(publicKey, SPKI_X25519_PREFIX).toString('base64') };
}

/** A preshared key: 32 random bytes, like `wg genpsk`. */
export function generatePresharedKey(): string {
  return randomBytes(32).toString('base64');
}

/** The public key of a private key, like `wg pubkey`. */
export function publicKeyOf(privateKey: string): string {
  assertWireGuardKey(privateKey, 'private key');
  const der = Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(privateKey, 'base64')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return rawKey(spki, SPKI_X25519_PREFIX).toString('base64');
}
