import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { splitDigestReference } from './pull.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('splitDigestReference: what pullImage accepts', () => {
  it('takes registry/repository@sha256 only', () => {
    assert.deepEqual(splitDigestReference(`127.0.0.1:5000/pic/calendar@${D}`), {
      registry: '127.0.0.1:5000',
      repository: '127.0.0.1:5000/pic/calendar',
      digest: D,
    });
    assert.deepEqual(splitDigestReference(`registry.example.org/pic/x@${D}`)?.registry, 'registry.example.org');
    assert.deepEqual(splitDigestReference(`localhost/x@${D}`)?.registry, 'localhost');
  });

  it('refuses a tag, a missing digest, and a name with no registry (Docker Hub)', () => {
    for (const ref of [
      `127.0.0.1:5000/pic/calendar:1`,
      `127.0.0.1:5000/pic/calendar:1@${D}`,
      `pic/calendar@${D}`,
      `calendar@${D}`,
      `127.0.0.1:5000/pic/x@sha256:abc`,
      `127.0.0.1:5000/pic/x@${D} `,
    ]) {
      assert.equal(splitDigestReference(ref), undefined, ref);
    }
  });
});
