import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalEntry, chainHash, entryIdOf, GENESIS_HASH, wellFormed, type ChainEntry } from './chain.js';

const base: ChainEntry = {
  id: 7,
  ts: '2026-11-22T10:00:00.000Z',
  actor: 'admin',
  action: 'config.update',
  target_type: 'config',
  target_id: 'cell',
  result: 'ok',
  ip: '127.0.0.1',
  details: { z: 1, a: { y: [3, 'x'], b: null } },
};

describe('audit chain', () => {
  it('serializes entries canonically: sorted keys, no whitespace, independent of insertion order', () => {
    const text = canonicalEntry(base);
    assert.equal(
      text,
      '{"action":"config.update","actor":"admin","details":{"a":{"b":null,"y":[3,"x"]},"z":1},"id":7,"ip":"127.0.0.1",' +
        '"result":"ok","target_id":"cell","target_type":"config","ts":"2026-11-22T10:00:00.000Z"}',
    );
    const shuffled = {
      ts: base.ts,
      details: { a: { b: null, y: [3, 'x'] }, z: 1 },
      ip: base.ip,
      id: 7,
      result: 'ok',
      actor: 'admin',
      action: 'config.update',
      target_type: 'config',
      target_id: 'cell',
    } as ChainEntry;
    assert.equal(canonicalEntry(shuffled), text);
  });

  it('wellFormed makes any entry canonicalizable: lone surrogates, NaN, bigints', () => {
    const details = { n: NaN, big: 10n, ['k\ud800']: ['\udc00x'], ok: '😀' };
    const odd = { ...base, actor: 'admin0\ud800', target_id: '\udfff', details };
    assert.throws(() => canonicalEntry(odd as ChainEntry), /surrogate/, 'canonicalize refuses a lone surrogate');
    const text = canonicalEntry(wellFormed(odd) as ChainEntry);
    const back = JSON.parse(text);
    assert.equal(back.actor, 'admin0\ufffd');
    assert.equal(back.target_id, '\ufffd');
    assert.deepEqual(back.details, { n: null, big: '10', ['k\ufffd']: ['\ufffdx'], ok: '😀' }, 'pairs are kept');
    assert.equal(canonicalEntry(wellFormed(base) as ChainEntry), canonicalEntry(base), 'well-formed: unchanged');
  });

  it('hashes prev_hash ‖ canonical JSON with SHA-256', () => {
    const text = canonicalEntry(base);
    const expected = createHash('sha256').update(GENESIS_HASH).update(text).digest('hex');
    assert.equal(chainHash(GENESIS_HASH, text), expected);
    assert.notEqual(chainHash('1'.repeat(64), text), expected, 'a different predecessor gives a different hash');
  });

  it('finds the top-level id even when details or strings contain look-alikes', () => {
    assert.equal(entryIdOf(canonicalEntry(base)), 7);
    const tricky: ChainEntry = {
      ...base,
      id: 12,
      details: { id: 99, nested: { ',"id":': 5 } },
      target_id: ',"id":3,',
      actor: 'x"id":4',
    };
    assert.equal(entryIdOf(canonicalEntry(tricky)), 12);
    assert.ok(Number.isNaN(entryIdOf('{"action":"x"}')));
  });
});
