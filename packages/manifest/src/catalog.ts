import type { KeyObject } from 'node:crypto';
import { compile, fieldErrors } from './ajv.js';
import { canonicalBytes, manifestDigest, sha256Digest } from './canonical.js';
import { CatalogRefusal, ManifestError } from './errors.js';
import type { TrustedKeyInput } from './keys.js';
import { readManifestYaml, validateManifest } from './manifest.js';
import { CatalogIndexSchema, type CatalogIndex, type IndexEntry, type ServiceManifest } from './schema.js';
import { signBytes, verifySignedBytes, type SerializedBundle } from './signing.js';

/** The largest index read. */
export const MAX_INDEX_BYTES = 1024 * 1024;

/** Validates index data (schema + unique ids); throws ManifestError naming the bad fields. */
export function validateIndex(data: unknown, subject = 'catalog index'): CatalogIndex {
  const validate = compile(CatalogIndexSchema);
  if (!validate(data)) throw new ManifestError(subject, fieldErrors(validate.errors));
  const seen = new Set<string>();
  data.services.forEach((s, i) => {
    if (seen.has(s.id)) throw new ManifestError(subject, { [`services.${i}.id`]: `repeats service "${s.id}"` });
    seen.add(s.id);
  });
  return data;
}

/** The signed payload of an index: its RFC 8785 canonical JSON bytes. */
export function canonicalIndexBytes(index: CatalogIndex): Buffer {
  return canonicalBytes(validateIndex(index));
}

/** An index entry for a manifest; the digest is computed from the manifest's canonical bytes. */
export function indexEntryFor(manifest: ServiceManifest, manifestPath: string): IndexEntry {
  return { id: manifest.id, version: manifest.version, manifest: manifestPath, digest: manifestDigest(manifest) };
}

export interface SignedIndex {
  /** The exact bytes that were signed (canonical JSON). Any JSON layout of the same data verifies. */
  bytes: Buffer;
  bundle: SerializedBundle;
}

/** Signs an index with the store's private key (offline, keyed sigstore message signature). */
export async function signIndex(index: CatalogIndex, privateKey: KeyObject | string): Promise<SignedIndex> {
  const bytes = canonicalIndexBytes(index);
  return { bytes, bundle: await signBytes(bytes, privateKey) };
}

export interface VerifiedIndex {
  index: CatalogIndex;
  /** Canonical bytes the signature covers. */
  bytes: Buffer;
  /** sha256 of those bytes: names this exact release in audit entries. */
  digest: string;
  /** Fingerprint of the trusted key that signed it. */
  signedBy: string;
}

/**
 * Verifies an index file's signature against the trusted keys, and only then reads it as an index.
 * The signature covers the canonical JSON of the file's data, so the file's whitespace and key
 * order do not matter, but any change to the data does. Throws CatalogRefusal:
 * missing_bundle, malformed_bundle, untrusted_key, signature_mismatch or malformed_index.
 */
export function verifyIndex(
  indexBytes: Uint8Array | string,
  bundle: unknown,
  trustedKeys: readonly TrustedKeyInput[],
): VerifiedIndex {
  const text = typeof indexBytes === 'string' ? indexBytes : Buffer.from(indexBytes).toString('utf8');
  if (Buffer.byteLength(text) > MAX_INDEX_BYTES)
    throw new CatalogRefusal('malformed_index', `the catalog index is larger than ${MAX_INDEX_BYTES} bytes`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // A bundle is still required first: an unsigned garbled file is "unsigned", not "garbled".
    verifySignedBytes(Buffer.from(text), bundle, trustedKeys, 'the catalog index');
    throw new CatalogRefusal('malformed_index', `the catalog index is not JSON: ${(err as Error).message}`);
  }
  let bytes: Buffer;
  try {
    bytes = canonicalBytes(data);
  } catch (err) {
    throw new CatalogRefusal('malformed_index', `the catalog index has no canonical form: ${(err as Error).message}`);
  }
  const { fingerprint } = verifySignedBytes(bytes, bundle, trustedKeys, 'the catalog index');
  let index: CatalogIndex;
  try {
    index = validateIndex(data);
  } catch (err) {
    throw new CatalogRefusal(
      'malformed_index',
      `the catalog index is signed but not a valid index: ${(err as Error).message}`,
    );
  }
  return { index, bytes, digest: sha256Digest(bytes), signedBy: fingerprint };
}

/** Rollback: refuses an index older than the highest version this cell has accepted. The same version is fine (a re-read). */
export function checkRollback(index: CatalogIndex, highestAcceptedVersion: number | undefined | null): void {
  if (
    highestAcceptedVersion !== undefined &&
    highestAcceptedVersion !== null &&
    index.version < highestAcceptedVersion
  ) {
    throw new CatalogRefusal(
      'rollback',
      `the catalog index is version ${index.version}, older than version ${highestAcceptedVersion} which this cell already accepted (a rollback)`,
      { version: index.version, highestAccepted: highestAcceptedVersion },
    );
  }
}

/** Freeze: refuses an index whose expiry time has passed, so a stale catalog cannot be replayed forever. */
export function checkExpiry(index: CatalogIndex, now: Date = new Date()): void {
  const expires = Date.parse(index.expires);
  if (!(now.getTime() < expires)) {
    throw new CatalogRefusal(
      'expired',
      `the catalog index expired at ${index.expires}; the store must publish a newly signed index`,
      {
        expires: index.expires,
        now: now.toISOString(),
      },
    );
  }
}

export interface AcceptIndexOptions {
  indexBytes: Uint8Array | string;
  bundle: unknown;
  trustedKeys: readonly TrustedKeyInput[];
  /** The highest index version this cell has accepted before; undefined on first use. */
  highestAcceptedVersion?: number | null;
  /** The digest of the index accepted as that version: the same version with other contents is refused. */
  highestAcceptedDigest?: string | null;
  now?: Date;
}

/**
 * A version number names one index: the store publishes a change as a higher version. An index
 * that claims the version this cell accepted, with other contents (its canonical digest differs),
 * is refused, as a rollback is: otherwise a replayed or forged-by-mistake index could swap the
 * catalog without the version moving.
 */
export function checkVersionReuse(
  verified: VerifiedIndex,
  highestAcceptedVersion?: number | null,
  acceptedDigest?: string | null,
): void {
  if (highestAcceptedVersion == null || !acceptedDigest || verified.index.version !== highestAcceptedVersion) return;
  if (verified.digest === acceptedDigest) return;
  throw new CatalogRefusal(
    'version_reused',
    `the catalog index claims version ${verified.index.version}, which this cell already accepted with other contents ` +
      `(${acceptedDigest}, now ${verified.digest}); a changed index must carry a higher version`,
    { version: verified.index.version, accepted_digest: acceptedDigest, digest: verified.digest },
  );
}

/** Everything a cell checks before it uses an index: signature, then rollback, then expiry. */
export function acceptIndex(options: AcceptIndexOptions): VerifiedIndex {
  const verified = verifyIndex(options.indexBytes, options.bundle, options.trustedKeys);
  checkRollback(verified.index, options.highestAcceptedVersion);
  checkVersionReuse(verified, options.highestAcceptedVersion, options.highestAcceptedDigest);
  checkExpiry(verified.index, options.now);
  return verified;
}

/** The index's entry for a service, or refusal not_listed. */
export function indexEntry(index: CatalogIndex, id: string): IndexEntry {
  const entry = index.services.find((s) => s.id === id);
  if (!entry)
    throw new CatalogRefusal('not_listed', `the signed catalog index does not list a service "${id}"`, { id });
  return entry;
}

/**
 * Mix-and-match: reads a manifest file and accepts it only if its canonical digest is the one the
 * signed index lists for that service, before the manifest is otherwise trusted (the schema check
 * runs after the digest check). Throws CatalogRefusal: not_listed, digest_mismatch,
 * invalid_manifest or manifest_mismatch.
 */
export function verifyManifest(index: CatalogIndex, id: string, manifestText: string | Uint8Array): ServiceManifest {
  const entry = indexEntry(index, id);
  let data: unknown;
  try {
    data = readManifestYaml(manifestText, entry.manifest);
  } catch (err) {
    // Unreadable bytes cannot have the listed digest: this is a substituted file, not a bad signed one.
    throw new CatalogRefusal(
      'digest_mismatch',
      `${entry.manifest} does not match the signed index: ${(err as Error).message}`,
      { id, expected: entry.digest },
    );
  }
  checkManifestDigest(entry, data);
  let manifest: ServiceManifest;
  try {
    manifest = validateManifest(data, entry.manifest);
  } catch (err) {
    throw new CatalogRefusal('invalid_manifest', (err as Error).message, { id });
  }
  if (manifest.id !== entry.id || manifest.version !== entry.version) {
    throw new CatalogRefusal(
      'manifest_mismatch',
      `${entry.manifest} is ${manifest.id} ${manifest.version}, but the signed index lists ${entry.id} ${entry.version}`,
      { id },
    );
  }
  return manifest;
}

/** Compares a manifest's canonical digest with its index entry; refusal digest_mismatch. */
export function checkManifestDigest(entry: IndexEntry, manifestData: unknown): void {
  let actual: string;
  try {
    actual = manifestDigest(manifestData);
  } catch (err) {
    throw new CatalogRefusal('digest_mismatch', `${entry.manifest} has no canonical form: ${(err as Error).message}`, {
      id: entry.id,
      expected: entry.digest,
    });
  }
  if (actual !== entry.digest) {
    throw new CatalogRefusal(
      'digest_mismatch',
      `${entry.manifest} has digest ${actual}, but the signed index lists ${entry.digest} for "${entry.id}": the manifest changed after signing or comes from another release`,
      { id: entry.id, expected: entry.digest, actual },
    );
  }
}
