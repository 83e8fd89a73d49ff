import { hash as oneShotHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** The hash that precedes the first entry ever written. */
export const GENESIS_HASH = '0'.repeat(64);

export interface ChainEntry {
  id: number;
  ts: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  result: 'ok' | 'denied' | 'error';
  ip: string | null;
  /** Names and ids only, never secrets. */
  details: Record<string, unknown>;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A copy of `value` that RFC 8785 can always canonicalize: lone surrogates (a login name of
 * "admin0\ud800") become U+FFFD, non-finite numbers null, bigints text. A refused write is
 * recorded whatever bytes it carried; canonicalize would otherwise throw and the entry be lost.
 */
export function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(LONE_SURROGATE, '\ufffd');
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[wellFormed(k) as string] = wellFormed(v);
    return out;
  }
  return value;
}

/** RFC 8785 canonical JSON of an entry: the bytes stored in `audit_log.entry` and hashed. */
export function canonicalEntry(e: ChainEntry): string {
  const text = canonicalize(e);
  if (text === undefined) throw new Error('audit entry is not serializable');
  return text;
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the entry), hex. */
export function chainHash(prevHash: string, entryText: string): string {
  // the one-shot hash is about twice as fast as createHash() here, which matters when verifying 1M entries
  return oneShotHash('sha256', prevHash + entryText, 'hex');
}

/**
 * The top-level `id` inside a canonical entry, found without parsing it: keys are sorted, so `id`
 * follows `details`, and nothing after it (ip, result, target_*, ts: strings with quotes escaped)
 * can contain an unescaped `,"id":`.
 */
export function entryIdOf(entryText: string): number {
  const at = entryText.lastIndexOf(',"id":');
  if (at < 0) return NaN;
  const end = entryText.indexOf(',', at + 6);
  return Number(entryText.slice(at + 6, end < 0 ? undefined : end));
}
