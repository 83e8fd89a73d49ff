/** `{ "containers.0.image": "must be pinned by digest …" }`: one reason per field, named by its path. */
export type FieldErrors = Record<string, string>;

/** A manifest (or index document) that does not satisfy the schema or its cross-field rules. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    /** What was being read, e.g. `manifest` or `manifests/email.yaml`. */
    readonly subject: string,
    readonly fields: FieldErrors,
  ) {
    const list = Object.entries(fields).map(([path, reason]) => `${path} ${reason}`);
    super(`${subject} is invalid: ${list.join('; ')}`);
  }
}

/**
 * Why a cell refuses to use a catalog, a manifest or an image. Each code is one policy decision;
 * the message says what to do about it.
 */
export type RefusalCode =
  /** No signature bundle came with the index (or the image signature is absent where required). */
  | 'missing_bundle'
  /** The bundle is not JSON, not a sigstore bundle, or not a keyed message signature. */
  | 'malformed_bundle'
  /** The bundle names a key the cell does not trust (or the cell trusts no key at all). */
  | 'untrusted_key'
  /** The signature does not verify: the bytes changed after signing, or another key signed them. */
  | 'signature_mismatch'
  /** The index is not JSON or not a valid catalog index. */
  | 'malformed_index'
  /** The index is older than the newest one this cell has already accepted. */
  | 'rollback'
  /** The index claims the version this cell accepted, but its contents differ from the accepted one. */
  | 'version_reused'
  /** The index's expiry time has passed (a frozen catalog). */
  | 'expired'
  /** The signed index does not list this service. */
  | 'not_listed'
  /** The index lists a manifest file that cannot be read. */
  | 'missing_manifest'
  /** The manifest's canonical digest differs from the one the signed index lists (mix-and-match). */
  | 'digest_mismatch'
  /** The manifest's id or version differs from its index entry. */
  | 'manifest_mismatch'
  /** The manifest matches its digest but is not a valid manifest (unparseable or schema errors). */
  | 'invalid_manifest'
  /** The local image's digest differs from the digest the manifest pins. */
  | 'image_digest_mismatch';

/** A typed refusal: `code` for programs (audit, HTTP mapping), `message` for people. */
export class CatalogRefusal extends Error {
  override readonly name = 'CatalogRefusal';
  constructor(
    readonly code: RefusalCode,
    message: string,
    /** Extra facts worth auditing (versions, digests, fingerprints). */
    readonly details: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

export function isCatalogRefusal(err: unknown, code?: RefusalCode): err is CatalogRefusal {
  return err instanceof CatalogRefusal && (code === undefined || err.code === code);
}
