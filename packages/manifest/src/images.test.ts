import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CatalogRefusal, type RefusalCode } from './errors.js';
import { assertImageDigest, imageSignaturePayload, signImage, verifyImageSignature } from './images.js';
import { generateStoreKeyPair, keyFingerprint } from './keys.js';
import { validateManifest } from './manifest.js';
import { DIGEST_A, DIGEST_B, validManifest } from './fixtures.test-support.js';

const key = generateStoreKeyPair();
const other = generateStoreKeyPair();
const IMAGE = `pic/email-postfix:3.7@${DIGEST_A}`;

function refusal(code: RefusalCode, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CatalogRefusal, `expected a CatalogRefusal, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

describe('image signatures', () => {
  it("signs cosign's payload for the repository and digest", () => {
    assert.equal(
      imageSignaturePayload('pic/email-postfix', DIGEST_A).toString(),
      `{"critical":{"identity":{"docker-reference":"pic/email-postfix"},"image":{"docker-manifest-digest":"${DIGEST_A}"},"type":"cosign container image signature"},"optional":{}}`,
    );
    assert.throws(() => imageSignaturePayload('pic/x', 'sha256:abc'), /not a sha256 digest/);
  });

  it("verifies a container's signature, and a manifest carrying one stays valid", async () => {
    const signature = await signImage(IMAGE, key.privateKey);
    assert.deepEqual(
      verifyImageSignature({ image: IMAGE, signature: signature as never }, [other.publicKey, key.publicKey]),
      {
        signed: true,
        fingerprint: keyFingerprint(key.publicKey),
      },
    );
    const m = validManifest();
    m.containers[0]!.image = IMAGE;
    m.containers[0]!.signature = signature as never;
    assert.equal(verifyImageSignature(validateManifest(m).containers[0]!, [key.publicKey]).signed, true);
  });

  it("reports an unsigned container as unsigned (the cell's mode decides)", () => {
    assert.deepEqual(verifyImageSignature({ image: IMAGE }, [key.publicKey]), { signed: false });
  });

  it('refuses a signature over another digest or another repository', async () => {
    const signature = await signImage(IMAGE, key.privateKey);
    assert.throws(
      () =>
        verifyImageSignature({ image: `pic/email-postfix:3.7@${DIGEST_B}`, signature: signature as never }, [
          key.publicKey,
        ]),
      refusal('signature_mismatch', /image pic\/email-postfix:3\.7@sha256:b+ does not match/),
    );
    assert.throws(
      () =>
        verifyImageSignature({ image: `evil/email-postfix@${DIGEST_A}`, signature: signature as never }, [
          key.publicKey,
        ]),
      refusal('signature_mismatch'),
    );
    // A tag is a label only: the same repository and digest under another tag is the same image.
    assert.equal(
      verifyImageSignature({ image: `pic/email-postfix:other@${DIGEST_A}`, signature: signature as never }, [
        key.publicKey,
      ]).signed,
      true,
    );
  });

  it('refuses a signature by an untrusted key, and a garbled one', async () => {
    const signature = await signImage(IMAGE, other.privateKey);
    assert.throws(
      () => verifyImageSignature({ image: IMAGE, signature: signature as never }, [key.publicKey]),
      refusal('untrusted_key'),
    );
    assert.throws(
      () => verifyImageSignature({ image: IMAGE, signature: { mediaType: 'x' } as never }, [key.publicKey]),
      refusal('malformed_bundle'),
    );
  });
});

describe('image digests', () => {
  it('accepts the pinned digest (also given as the pinned reference)', () => {
    assert.doesNotThrow(() => assertImageDigest(DIGEST_A, DIGEST_A));
    assert.doesNotThrow(() => assertImageDigest(IMAGE, DIGEST_A.toUpperCase().replace('SHA256', 'sha256')));
  });

  it('refuses a different or absent local image, saying which', () => {
    assert.throws(
      () => assertImageDigest(DIGEST_A, DIGEST_B, 'pic/email-postfix'),
      refusal(
        'image_digest_mismatch',
        /pic\/email-postfix on the container engine has digest sha256:b+, but the manifest pins sha256:a+/,
      ),
    );
    assert.throws(
      () => assertImageDigest(DIGEST_A, undefined, 'pic/email-postfix'),
      refusal('image_digest_mismatch', /not present/),
    );
    assert.throws(() => assertImageDigest(DIGEST_A, '', 'x'), refusal('image_digest_mismatch'));
    assert.throws(() => assertImageDigest('latest', DIGEST_A), /not sha256/);
  });
});
