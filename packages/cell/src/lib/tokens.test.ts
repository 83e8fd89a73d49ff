import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generatePassword, randomToken, safeEqual, sha256Hex } from './tokens.js';

const ALPHABET = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789';

describe('generatePassword', () => {
  it('is 20 characters by default and honours a given length', () => {
    assert.equal(generatePassword().length, 20);
    for (const n of [0, 1, 12, 64, 200]) assert.equal(generatePassword(n).length, n);
  });

  it('uses only the unambiguous alphabet (no 0/O/o, 1/l/I/i) and, over many draws, every letter of it', () => {
    const seen = new Map<string, number>();
    const draws = 10_000;
    for (let i = 0; i < draws; i++) {
      for (const ch of generatePassword()) seen.set(ch, (seen.get(ch) ?? 0) + 1);
    }
    for (const ch of seen.keys()) assert.ok(ALPHABET.includes(ch), `unexpected character ${JSON.stringify(ch)}`);
    for (const ambiguous of '0Oo1lIi') assert.equal(seen.has(ambiguous), false, ambiguous);
    assert.equal(seen.size, ALPHABET.length, 'every alphabet character appears');
    // Uniform: 200,000 draws over 54 characters is ~3,704 each (σ ≈ 60); ±10 % is 6σ, so this does
    // not flake, while a modulo bias (byte % 54 without rejection: +25 % for the first 40) fails it.
    const expected = (draws * 20) / ALPHABET.length;
    for (const [ch, n] of seen)
      assert.ok(n > expected * 0.9 && n < expected * 1.1, `${ch}: ${n} vs ~${expected.toFixed(0)}`);
  });

  it('does not repeat itself', () => {
    const set = new Set(Array.from({ length: 500 }, () => generatePassword()));
    assert.equal(set.size, 500);
  });
});

describe('safeEqual', () => {
  it('is true only for identical strings', () => {
    assert.equal(safeEqual('token-abc', 'token-abc'), true);
    assert.equal(safeEqual('', ''), true);
    assert.equal(safeEqual('token-abc', 'token-abd'), false);
    assert.equal(safeEqual('token-abc', 'Token-abc'), false);
  });
  it('handles different lengths (no throw) and compares bytes, not normalised text', () => {
    assert.equal(safeEqual('short', 'longer-string'), false);
    assert.equal(safeEqual('abc', ''), false);
    assert.equal(safeEqual('é', 'e\u0301'), false);
    assert.equal(safeEqual('ü', 'ü'), true);
  });
});

describe('randomToken / sha256Hex', () => {
  it('gives 256 random bits as base64url by default', () => {
    const t = randomToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(randomToken(), t);
    assert.equal(Buffer.from(randomToken(16), 'base64url').length, 16);
  });
  it('hashes with SHA-256 (known vector) to lowercase hex', () => {
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(sha256Hex(Buffer.from('abc')), sha256Hex('abc'));
  });
});
