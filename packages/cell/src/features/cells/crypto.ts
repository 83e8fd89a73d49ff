/**
 * The cryptography of linked cells: a cell proves who it is with its WireGuard key and nothing else.
 *
 * Two cells that know each other's WireGuard public keys share an X25519 secret (the same one each
 * side computes from its own private key and the other's public key). It is never stored: it is
 * derived in memory, through HKDF-SHA256 with a label per purpose, into HMAC-SHA256 keys:
 * - `accept`: the response to an invite is a MAC over the invite's nonce and both public keys (and
 *   what the responder claims about itself), so only the holder of the claimed private key can make it;
 * - `sync`: every peer-sync message carries a MAC over its exact bytes, bound to its direction.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, timingSafeEqual } from 'node:crypto';
import { assertWireGuardKey } from '../wireguard/keys.js';

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export type KeyPurpose = 'accept' | 'sync';
const LABELS: Record<KeyPurpose, string> = {
  accept: 'pic cell link v1: invite response',
  sync: 'pic cell link v1: peer-sync',
};

/** The raw X25519 shared secret of my private key and their public key (32 bytes). */
export function sharedSecret(myPrivateKey: string, theirPublicKey: string): Buffer {
  assertWireGuardKey(myPrivateKey, 'private key');
  assertWireGuardKey(theirPublicKey, 'public key');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(myPrivateKey, 'base64')]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, Buffer.from(theirPublicKey, 'base64')]),
    format: 'der',
    type: 'spki',
  });
  const secret = diffieHellman({ privateKey, publicKey });
  // a low-order public key gives the all-zero secret: it proves nothing, refuse it
  if (secret.every((b) => b === 0)) throw new TypeError('public key is of low order');
  return secret;
}

/** The HMAC key for one purpose, from the shared secret, bound to both public keys (sorted). */
export function linkKey(
  myPrivateKey: string,
  myPublicKey: string,
  theirPublicKey: string,
  purpose: KeyPurpose,
): Buffer {
  const secret = sharedSecret(myPrivateKey, theirPublicKey);
  const salt = Buffer.from([myPublicKey, theirPublicKey].sort().join('\n'), 'utf8');
  return Buffer.from(hkdfSync('sha256', secret, salt, LABELS[purpose], 32));
}

export function mac(key: Buffer, ...parts: Array<string | Buffer>): string {
  const h = createHmac('sha256', key);
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    // length-prefixed, so no two lists of parts give the same input
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest('base64url');
}

export function macEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
