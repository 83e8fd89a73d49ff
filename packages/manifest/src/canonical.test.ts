import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { canonicalBytes, manifestDigest, sha256Digest } from './canonical.js';
import { parseManifest, readManifestYaml } from './manifest.js';
import { clone, validManifest } from './fixtures.test-support.js';

/** Rebuilds every object with its keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  return value;
}

describe('canonical bytes', () => {
  it('writes RFC 8785 JSON: sorted keys (by UTF-16 code units), no whitespace, shortest numbers', () => {
    const bytes = canonicalBytes({
      b: [1.0, 1e21, 0.5, -0],
      a: { z: 'é\u2028"', y: null, Z: true },
      '\u20ac': 1,
      '\ud83d\ude00': 2,
    });
    assert.equal(
      bytes.toString('utf8'),
      '{"a":{"Z":true,"y":null,"z":"é\u2028\\""},"b":[1,1e+21,0.5,0],"\u20ac":1,"\ud83d\ude00":2}',
    );
  });

  it('does not depend on key order or layout', () => {
    const m = validManifest();
    const yamlA = stringify(m);
    const yamlB = stringify(reverseKeys(m), {
      indent: 4,
      defaultStringType: 'QUOTE_DOUBLE',
      flowCollectionPadding: false,
    });
    assert.notEqual(yamlA, yamlB);
    const json = JSON.stringify(reverseKeys(m), null, 3);
    const a = canonicalBytes(readManifestYaml(yamlA));
    assert.deepEqual(canonicalBytes(readManifestYaml(yamlB)), a);
    assert.deepEqual(canonicalBytes(readManifestYaml(json)), a, 'JSON is YAML too, and canonicalizes the same');
    assert.deepEqual(canonicalBytes(m), a);
  });

  it('gives a stable sha256 digest of the canonical bytes', () => {
    const m = validManifest();
    const expected = `sha256:${createHash('sha256').update(canonicalBytes(m)).digest('hex')}`;
    assert.equal(manifestDigest(m), expected);
    assert.equal(manifestDigest(reverseKeys(m)), expected);
    assert.equal(manifestDigest(parseManifest(stringify(m))), expected);
    assert.equal(
      sha256Digest(Buffer.from('abc')),
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('changes the digest when any value changes, however small', () => {
    const base = manifestDigest(validManifest());
    const variants: Array<(m: any) => void> = [
      (m) => (m.version = '1.2.4'),
      (m) => (m.containers[0].image = m.containers[0].image.replace(/a$/, 'b')),
      (m) => (m.containers[0].command[2] = '8081'),
      (m) => (m.accounts.create.exec.stdin = '{{password}}'),
      (m) => m.routes.reverse(),
      (m) => (m.containers[0].volumes[1].readOnly = false),
    ];
    for (const change of variants) {
      const m = clone(validManifest()) as any;
      change(m);
      assert.notEqual(manifestDigest(m), base, change.toString());
    }
  });

  it('refuses values JSON cannot carry, instead of hashing them as something else', () => {
    assert.throws(() => canonicalBytes({ a: Number.NaN }), /a is NaN/);
    assert.throws(() => canonicalBytes({ a: [Infinity] }), /a\.0 is Infinity/);
    assert.throws(() => canonicalBytes({ a: undefined }), /not plain JSON/);
    assert.throws(() => canonicalBytes({ d: new Date(0) }), /not plain JSON/);
    assert.throws(() => canonicalBytes(new Map()), /not plain JSON/);
  });
});
