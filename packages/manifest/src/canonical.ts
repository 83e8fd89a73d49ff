import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JCS) bytes of a JSON value: sorted keys, no whitespace, fixed number and string forms.
 * The same data always gives the same bytes, whatever order or layout it was written in.
 */
export function canonicalBytes(value: unknown): Buffer {
  assertJsonData(value, '');
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return Buffer.from(text, 'utf8');
}

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest the catalog index lists for a manifest: sha256 of its canonical JSON bytes. */
export function manifestDigest(manifest: unknown): string {
  return sha256Digest(canonicalBytes(manifest));
}

/**
 * Only plain JSON data has one canonical form: JCS would silently turn NaN into null or drop an
 * undefined property, making two different documents hash alike.
 */
function assertJsonData(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path || 'value'} is ${value}, which JSON cannot represent`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      assertJsonData(v, path ? `${path}.${i}` : String(i));
    });
    return;
  }
  if (
    typeof value === 'object' &&
    (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)
  ) {
    for (const [k, v] of Object.entries(value)) assertJsonData(v, path ? `${path}.${k}` : k);
    return;
  }
  throw new TypeError(`${path || 'value'} is not plain JSON data (${typeof value})`);
}
