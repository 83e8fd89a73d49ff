import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import {
  bundleFromJSON,
  bundleToJSON,
  isBundleWithMessageSignature,
  isBundleWithPublicKey,
  type Bundle,
  type SerializedBundle,
} from '@sigstore/bundle';
import { MessageSignatureBundleBuilder, type Signer } from '@sigstore/sign';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { sha256Digest } from './canonical.js';
import { CatalogRefusal } from './errors.js';
import {
  keyFingerprint,
  loadPrivateKey,
  normalizeFingerprint,
  publicKeyPem,
  toTrustedKeys,
  type TrustedKeyInput,
} from './keys.js';

export type { SerializedBundle } from '@sigstore/bundle';

/** The largest bundle read; a keyed message-signature bundle is well under 1 kB. */
export const MAX_BUNDLE_BYTES = 64 * 1024;

/**
 * Signs bytes into a sigstore bundle: a message signature (ECDSA P-256 over SHA-256), the public
 * key named by its fingerprint as the hint, and no transparency log or timestamp witnesses, so it
 * works offline with the store's own key.
 */
export async function signBytes(bytes: Uint8Array, privateKey: KeyObject | string): Promise<SerializedBundle> {
  const key = typeof privateKey === 'string' ? loadPrivateKey(privateKey) : privateKey;
  const pem = publicKeyPem(key);
  const hint = keyFingerprint(key);
  const signer: Signer = {
    async sign(data: Buffer) {
      return { signature: cryptoSign('sha256', data, key), key: { $case: 'publicKey', publicKey: pem, hint } };
    },
  };
  const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({
    data: Buffer.from(bytes),
  });
  return bundleToJSON(bundle);
}

/** The key fingerprint that signed, once the signature has verified. */
export interface SignatureCheck {
  fingerprint: string;
}

/**
 * Verifies a bundle over some bytes against trusted keys. `what` names the signed thing in the
 * refusal messages ("the catalog index", "image pic/email@sha256:…").
 */
export function verifySignedBytes(
  bytes: Uint8Array,
  bundleInput: unknown,
  trustedKeys: readonly TrustedKeyInput[],
  what: string,
): SignatureCheck {
  // The caller's keys first: a fingerprint stored with the wrong key is a bug, whatever the bundle holds.
  const { usable: trusted, unusable } = toTrustedKeys(trustedKeys);
  const bundle = readBundle(bundleInput, what);
  const hint =
    bundle.verificationMaterial.content.$case === 'publicKey'
      ? normalizeFingerprint(bundle.verificationMaterial.content.publicKey.hint)
      : '';
  if (trusted.length === 0 && !unusable.includes(hint)) {
    throw new CatalogRefusal('untrusted_key', `${what} cannot be verified: this cell trusts no ECDSA P-256 store key`);
  }
  const key = trusted.find((k) => k.fingerprint === hint);
  if (!key && unusable.includes(hint)) {
    throw new CatalogRefusal(
      'untrusted_key',
      `${what} names key ${hint}, which this cell trusts, but it is not an ECDSA P-256 key as store signatures require`,
      {
        keyFingerprint: hint,
      },
    );
  }
  if (!key) {
    throw new CatalogRefusal(
      'untrusted_key',
      `${what} is signed by key ${hint || '(unnamed)'}, which this cell does not trust (trusted: ${trusted.map((k) => k.fingerprint).join(', ')})`,
      { keyFingerprint: hint },
    );
  }
  // The bundle's own digest must describe these bytes too; the signature check below is the real one.
  const signature = bundle.content.$case === 'messageSignature' ? bundle.content.messageSignature : undefined;
  const claimed = signature?.messageDigest
    ? `sha256:${Buffer.from(signature.messageDigest.digest).toString('hex')}`
    : undefined;
  const mismatch = () =>
    new CatalogRefusal(
      'signature_mismatch',
      `${what} does not match its signature: it was changed after signing, or signed by a key other than the one the bundle names (${key.fingerprint})`,
      { keyFingerprint: key.fingerprint },
    );
  if (claimed !== undefined && claimed !== sha256Digest(bytes)) throw mismatch();

  const trustMaterial = toTrustMaterial(
    { mediaType: '', certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] },
    (h: string) => {
      if (normalizeFingerprint(h) !== key.fingerprint) throw new Error(`no trusted key ${h}`);
      return { publicKey: key.key, validFor: () => true };
    },
  );
  // Offline and keyed: no transparency log, certificate log or timestamp is required or trusted.
  const verifier = new Verifier(trustMaterial, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  try {
    verifier.verify(toSignedEntity(bundle, Buffer.from(bytes)));
  } catch {
    throw mismatch();
  }
  return { fingerprint: key.fingerprint };
}

/** Parses and checks the bundle's shape: a sigstore bundle with a keyed message signature. */
export function readBundle(input: unknown, what: string): Bundle {
  if (
    input === undefined ||
    input === null ||
    (typeof input === 'string' && input.trim() === '') ||
    (input instanceof Uint8Array && input.length === 0)
  ) {
    throw new CatalogRefusal('missing_bundle', `${what} comes without a signature bundle; nothing unsigned is trusted`);
  }
  let json: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
    if (Buffer.byteLength(text) > MAX_BUNDLE_BYTES)
      throw new CatalogRefusal(
        'malformed_bundle',
        `the signature bundle of ${what} is larger than ${MAX_BUNDLE_BYTES} bytes`,
      );
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new CatalogRefusal(
        'malformed_bundle',
        `the signature bundle of ${what} is not JSON: ${(err as Error).message}`,
      );
    }
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CatalogRefusal('malformed_bundle', `the signature bundle of ${what} is not a JSON object`);
  }
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    throw new CatalogRefusal(
      'malformed_bundle',
      `the signature bundle of ${what} is not a valid sigstore bundle: ${(err as Error).message}`,
    );
  }
  if (!isBundleWithMessageSignature(bundle)) {
    throw new CatalogRefusal(
      'malformed_bundle',
      `the signature bundle of ${what} is not a message signature (got ${bundle.content.$case})`,
    );
  }
  if (!isBundleWithPublicKey(bundle) || !bundle.verificationMaterial.content.publicKey.hint) {
    throw new CatalogRefusal(
      'malformed_bundle',
      `the signature bundle of ${what} does not name a public key (keyed signing with a key hint is required)`,
    );
  }
  return bundle;
}
