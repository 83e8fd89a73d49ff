/**
 * WireGuard keys: X25519 through node:crypto, written the way `wg genkey` / `wg pubkey` print them
 * (the raw 32 bytes, standard base64, 44 characters ending in "=").
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';

export interface WireGuardKeyPair {
  privateKey: string;
  publicKey: string;
}

/** Canonical base64 of exactly 32 bytes: 43 significant characters, the last carrying 2 zero bits. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** True when `text` is a WireGuard key as `wg` writes and reads it (base64 of 32 bytes). */
export function isWireGuardKey(text: unknown): text is string {
  return typeof text === 'string' && KEY_PATTERN.test(text);
}

/** Throws (without echoing the value: it may be a secret) unless `text` is a WireGuard key. */
export function assertWireGuardKey(text: unknown, what = 'key'): asserts text is string {
  if (!isWireGuardKey(text)) throw new TypeError(`${what} is not a WireGuard key (base64 of 32 bytes)`);
}

/** PKCS#8 wrapping of a raw X25519 private key (RFC 8410): the DER header before the 32 key bytes. */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

const fromBase64Url = (s: string): string => Buffer.from(s, 'base64url').toString('base64');

/** A new keypair. The private key is clamped as `wg genkey` clamps it (RFC 7748). */
export function generateKeyPair(): WireGuardKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  clamp(raw);
  const privateKeyText = raw.toString('base64');
  return { privateKey: privateKeyText, publicKey: publicKeyOf(privateKeyText) };
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
  return fromBase64Url(createPublicKey(key).export({ format: 'jwk' }).x!);
}

function clamp(raw: Buffer): void {
  raw[0] = raw[0]! & 248;
  raw[31] = (raw[31]! & 127) | 64;
}
