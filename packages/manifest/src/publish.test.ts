import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { generateStoreKeyPair } from './keys.js';
import { verifyImageSignature, signImage } from './images.js';
import { pinManifestImages } from './publish.js';
import { validManifest } from './fixtures.test-support.js';

describe('pinManifestImages (store:publish)', () => {
  const key = generateStoreKeyPair();
  const text = `# a comment that stays\n${stringify(validManifest())}`;
  const names = validManifest().containers.map((c) => c.name);
  const ref = `127.0.0.1:5000/pic/demo:1@sha256:${'c'.repeat(64)}`;

  it('replaces the image and signature of the named containers, keeps comments and everything else', async () => {
    const signature = await signImage(ref, key.privateKey);
    const { text: out, manifest } = pinManifestImages(text, { [names[0]!]: { image: ref, signature } });
    assert.match(out, /^# a comment that stays\n/);
    assert.equal(manifest.containers[0]!.image, ref);
    assert.deepEqual(verifyImageSignature(manifest.containers[0]!, [key.publicKey]).signed, true);
    const before = validManifest();
    assert.deepEqual(
      { ...manifest, containers: manifest.containers.slice(1) },
      { ...before, containers: before.containers.slice(1) },
    );
  });

  it('drops a stale signature when none is given, and refuses a container the manifest lacks', () => {
    const signed = validManifest();
    signed.containers[0]!.signature = { mediaType: 'x' } as never;
    const { manifest } = pinManifestImages(stringify(signed), { [names[0]!]: { image: ref } });
    assert.equal(manifest.containers[0]!.signature, undefined);
    assert.throws(() => pinManifestImages(text, { nope: { image: ref } }), /no container named "nope"/);
  });
});
