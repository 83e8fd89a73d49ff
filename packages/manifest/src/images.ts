import type { KeyObject } from 'node:crypto';
import { canonicalBytes } from './canonical.js';
import { CatalogRefusal } from './errors.js';
import { isDigest, parseImageReference } from './image-ref.js';
import type { TrustedKeyInput } from './keys.js';
import type { ContainerSpec } from './schema.js';
import { signBytes, verifySignedBytes, type SerializedBundle } from './signing.js';

/**
 * cosign's "simple signing" payload for an image: what a signature over an image digest covers.
 * Written as canonical JSON (cosign's own key order is the same sorted order).
 */
export function imageSignaturePayload(repository: string, digest: string): Buffer {
  if (!isDigest(digest)) throw new TypeError(`"${digest}" is not a sha256 digest`);
  return canonicalBytes({
    critical: {
      identity: { 'docker-reference': repository },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    },
    optional: {},
  });
}

/** Signs a pinned image reference's digest into the bundle a manifest container carries as `signature`. */
export async function signImage(imageReference: string, privateKey: KeyObject | string): Promise<SerializedBundle> {
  const { repository, digest } = parseImageReference(imageReference);
  return signBytes(imageSignaturePayload(repository, digest), privateKey);
}

export type ImageSignatureResult = { signed: false } | { signed: true; fingerprint: string };

/**
 * Verifies a container's optional image signature: a sigstore bundle over cosign's payload for the
 * manifest's repository and pinned digest. `{ signed: false }` when the container carries none
 * (whether that is acceptable is the cell's verification mode). Throws CatalogRefusal
 * (malformed_bundle, untrusted_key, signature_mismatch) when a signature is present but fails.
 */
export function verifyImageSignature(
  container: Pick<ContainerSpec, 'image' | 'signature'>,
  trustedKeys: readonly TrustedKeyInput[],
): ImageSignatureResult {
  if (container.signature === undefined) return { signed: false };
  const { repository, digest } = parseImageReference(container.image);
  const { fingerprint } = verifySignedBytes(
    imageSignaturePayload(repository, digest),
    container.signature,
    trustedKeys,
    `the signature of image ${container.image}`,
  );
  return { signed: true, fingerprint };
}

/**
 * Refuses a local image whose digest differs from the one the manifest pins. `actualDigest` is what
 * the engine reports (undefined when it has no such image).
 */
export function assertImageDigest(
  expectedDigest: string,
  actualDigest: string | undefined | null,
  image = 'the image',
): void {
  const expected = expectedDigest.includes('@')
    ? parseImageReference(expectedDigest).digest
    : expectedDigest.trim().toLowerCase();
  if (!isDigest(expected)) throw new TypeError(`expected digest "${expectedDigest}" is not sha256:<64 hex>`);
  const actual = actualDigest?.trim().toLowerCase();
  if (!actual) {
    throw new CatalogRefusal(
      'image_digest_mismatch',
      `${image} is not present on the container engine; the manifest pins ${expected}`,
      { expected },
    );
  }
  if (actual !== expected) {
    throw new CatalogRefusal(
      'image_digest_mismatch',
      `${image} on the container engine has digest ${actual}, but the manifest pins ${expected}: refusing to run an image other than the signed one`,
      { expected, actual },
    );
  }
}
