import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** The hash that precedes the first entry ever written. */
export const GENESIS_HASH = '0'.repeat(64);

/** An entry as stored; `details` is canonical JSON text, exactly the bytes that were hashed. */
export interface ChainEntry {
  id: number;
  ts: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  result: 'ok' | 'denied' | 'error';
  ip: string | null;
  details: string;
}

/** RFC 8785 canonical JSON of an entry's details (never secrets: callers pass names, not values). */
export function canonicalDetails(details: Record<string, unknown> | undefined): string {
  return canonicalize(details ?? {}) ?? '{}';
}

/**
 * Canonical JSON of the whole entry, built by hand in RFC 8785 key order so verifying a million
 * entries does not re-parse a million `details` documents. Equal to canonicalize(entry) when
 * `details` is canonical (a unit test holds it to that).
 */
export function canonicalEntry(e: ChainEntry): string {
  const s = JSON.stringify;
  return (
    `{"action":${s(e.action)},"actor":${s(e.actor)},"details":${e.details},"id":${e.id},"ip":${s(e.ip)},` +
    `"result":${s(e.result)},"target_id":${s(e.target_id)},"target_type":${s(e.target_type)},"ts":${s(e.ts)}}`
  );
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the entry), hex. */
export function entryHash(prevHash: string, e: ChainEntry): string {
  return createHash('sha256').update(prevHash).update(canonicalEntry(e)).digest('hex');
}
