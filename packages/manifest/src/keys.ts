import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/**
 * Store keys are ECDSA P-256 (cosign's default): sigstore message signatures work with it, while
 * Ed25519 works only with DSSE bundles.
 */
export const STORE_KEY_CURVE = 'prime256v1';

export interface StoreKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A fresh P-256 key pair, for the maintainers' keygen and for tests' throwaway keys. */
export function generateStoreKeyPair(): StoreKeyPair {
  return generateKeyPairSync('ec', { namedCurve: STORE_KEY_CURVE });
}

/**
 * A key's fingerprint: lowercase hex SHA-256 of its DER SubjectPublicKeyInfo. It is the bundle's
 * key hint, so a verifier finds the key among several trusted ones (rotation).
 */
export function keyFingerprint(key: KeyObject | string): string {
  const pub = publicKeyOf(key);
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** A public key from a PEM (SPKI) or a KeyObject (a private one gives its public half); P-256 only. */
export function publicKeyOf(key: KeyObject | string): KeyObject {
  let pub: KeyObject;
  if (typeof key === 'string') pub = createPublicKey(key);
  else pub = key.type === 'private' ? createPublicKey(key) : key;
  assertStoreKey(pub);
  return pub;
}

/** SPKI PEM text of a public key (what services-index/store.pub.pem holds). */
export function publicKeyPem(key: KeyObject | string): string {
  return publicKeyOf(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** Loads a PEM private key (PKCS#8 or SEC1, optionally passphrase-encrypted); P-256 only. */
export function loadPrivateKey(pem: string | Buffer, passphrase?: string): KeyObject {
  const key = createPrivateKey(passphrase === undefined ? { key: pem } : { key: pem, passphrase });
  assertStoreKey(key);
  return key;
}

function assertStoreKey(key: KeyObject): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== STORE_KEY_CURVE) {
    throw new TypeError(
      `store keys must be ECDSA P-256 (prime256v1); this key is ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''}`,
    );
  }
}

/** A key the cell trusts. A bare KeyObject or PEM gets its fingerprint computed. */
export type TrustedKeyInput = KeyObject | string | { fingerprint?: string; key: KeyObject | string };

export interface TrustedKey {
  fingerprint: string;
  key: KeyObject;
}

/**
 * Normalizes trusted keys. Keys that are not ECDSA P-256 (a cell may also trust Ed25519 keys for
 * other purposes) cannot have made a store signature; they come back in `unusable` so a refusal
 * can say so. A given fingerprint must equal the computed one: a mismatch means the caller stored
 * the wrong key next to a name, and trusting either would be a guess.
 */
export function toTrustedKeys(keys: readonly TrustedKeyInput[]): { usable: TrustedKey[]; unusable: string[] } {
  const usable: TrustedKey[] = [];
  const unusable: string[] = [];
  for (const k of keys) {
    const given = typeof k === 'object' && 'key' in k ? k : { key: k };
    let key = typeof given.key === 'string' ? createPublicKey(given.key) : given.key;
    if (key.type === 'private') key = createPublicKey(key);
    const fingerprint = createHash('sha256')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest('hex');
    if (given.fingerprint !== undefined && normalizeFingerprint(given.fingerprint) !== fingerprint) {
      throw new TypeError(`trusted key fingerprint ${given.fingerprint} does not match its key (${fingerprint})`);
    }
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === STORE_KEY_CURVE)
      usable.push({ fingerprint, key });
    else unusable.push(fingerprint);
  }
  return { usable, unusable };
}

/** Accepts `sha256:<hex>` or bare hex, any case. */
export function normalizeFingerprint(value: string): string {
  return value
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
}
