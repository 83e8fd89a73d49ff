/**
 * Image references pinned by digest: `[registry[:port]/]path[:tag]@sha256:<64 hex>`. The digest is
 * what the cell trusts; a tag, when written, is only a label for people.
 */

// Lowercase only: host names are case-insensitive, and one spelling keeps one digest per manifest.
const DOMAIN = '(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?/)';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = `(?:${DOMAIN}?${COMPONENT}(?:/${COMPONENT})*)`;
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';

/** `sha256:` and 64 lowercase hex digits. */
export const DIGEST_PATTERN = '^sha256:[0-9a-f]{64}$';
/** A reference that must carry a digest; used by the manifest schema. */
export const PINNED_IMAGE_PATTERN = `^${REPOSITORY}(?::${TAG})?@sha256:[0-9a-f]{64}$`;

const PINNED = new RegExp(`^(${REPOSITORY})(?::(${TAG}))?@(sha256:[0-9a-f]{64})$`);
const DIGEST = new RegExp(DIGEST_PATTERN);

export interface ImageReference {
  /** Registry and path without tag or digest, e.g. `pic/email-postfix`: cosign's docker-reference. */
  repository: string;
  tag?: string;
  /** `sha256:<hex>` */
  digest: string;
}

/** Splits a pinned reference; throws when the reference carries no `@sha256:` digest. */
export function parseImageReference(reference: string): ImageReference {
  const m = PINNED.exec(reference);
  if (!m) {
    const hint = reference.includes('@')
      ? 'a digest of the form sha256:<64 lowercase hex>'
      : 'a digest (a tag alone can be moved)';
    throw new TypeError(`image reference "${reference}" is not pinned: it needs ${hint}, e.g. name@sha256:…`);
  }
  return { repository: m[1]!, ...(m[2] ? { tag: m[2] } : {}), digest: m[3]! };
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}
