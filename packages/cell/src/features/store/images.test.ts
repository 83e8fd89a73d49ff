import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateStoreKeyPair, signImage, type ServiceManifest } from '@pic/manifest';
import { checkImages, registryOf } from './images.js';
import { demoManifest, FakeRuntime, IMAGE_ID } from './fixtures.test-support.js';

const trusted = generateStoreKeyPair();
const stranger = generateStoreKeyPair();
const OTHER_ID = `sha256:${'2'.repeat(64)}`;

async function signed(m: ServiceManifest, key = trusted.privateKey): Promise<ServiceManifest> {
  const copy = structuredClone(m);
  for (const c of copy.containers) c.signature = (await signImage(c.image, key)) as never;
  return copy;
}

function runtimeWith(digest: string | undefined): FakeRuntime {
  const rt = new FakeRuntime();
  if (digest) rt.images.set('pic-demo:1', digest);
  return rt;
}

describe('checkImages (ADR 001: the image is the signed one)', () => {
  it('enforce: a local image with the pinned digest and a trusted signature is run by its ID', async () => {
    const { plans, warnings } = await checkImages(
      runtimeWith(IMAGE_ID),
      await signed(demoManifest()),
      [trusted.publicKey],
      'enforce',
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      plans.map((p) => [p.container, p.image, p.actual]),
      [
        ['app', IMAGE_ID, IMAGE_ID],
        ['worker', IMAGE_ID, IMAGE_ID],
      ],
    );
    assert.ok(plans.every((p) => typeof p.signedBy === 'string' && p.signedBy.length === 64));
  });

  it('enforce: refuses a different local image, naming both digests', async () => {
    await assert.rejects(
      checkImages(runtimeWith(OTHER_ID), await signed(demoManifest()), [trusted.publicKey], 'enforce'),
      (err: any) => {
        assert.equal(err.code, 'image_digest_mismatch');
        assert.match(err.message, new RegExp(`has digest ${OTHER_ID}.*pins ${IMAGE_ID}`));
        return true;
      },
    );
  });

  it('enforce: refuses an unsigned image, and one signed by an untrusted key', async () => {
    await assert.rejects(
      checkImages(runtimeWith(IMAGE_ID), demoManifest(), [trusted.publicKey], 'enforce'),
      (err: any) => err.code === 'missing_bundle' && /carries no signature/.test(err.message),
    );
    await assert.rejects(
      checkImages(
        runtimeWith(IMAGE_ID),
        await signed(demoManifest(), stranger.privateKey),
        [trusted.publicKey],
        'enforce',
      ),
      (err: any) => err.code === 'untrusted_key',
    );
  });

  it('enforce: refuses a signature over another digest (the pin was changed after signing)', async () => {
    const m = await signed(demoManifest());
    m.containers[0]!.image = `pic-demo:1@${OTHER_ID}`;
    await assert.rejects(
      checkImages(runtimeWith(OTHER_ID), m, [trusted.publicKey], 'enforce'),
      (err: any) => err.code === 'signature_mismatch',
    );
  });

  it('warn: lets a mismatched, unsigned image through with warnings, running the local image', async () => {
    const { plans, warnings } = await checkImages(runtimeWith(OTHER_ID), demoManifest(), [trusted.publicKey], 'warn');
    assert.deepEqual(warnings.map((w) => w.code).sort(), [
      'image_digest_mismatch',
      'image_digest_mismatch',
      'missing_bundle',
      'missing_bundle',
    ]);
    assert.equal(plans[0]!.image, 'pic-demo:1', 'not the pinned ID: that is not what the engine has');
  });

  it('off: checks nothing but presence; a missing image that names no registry is refused in every mode (it is never pulled)', async () => {
    const { plans, warnings } = await checkImages(runtimeWith(OTHER_ID), demoManifest(), [], 'off');
    assert.deepEqual(warnings, []);
    assert.equal(plans[0]!.image, 'pic-demo:1');
    for (const mode of ['enforce', 'warn', 'off'] as const) {
      await assert.rejects(
        checkImages(runtimeWith(undefined), demoManifest(), [], mode),
        (err: any) => err.code === 'image_digest_mismatch' && /not on the container engine/.test(err.message),
      );
    }
  });

  it('a registry image the engine lacks is planned as a pull by digest (signature still checked first)', async () => {
    const ref = `127.0.0.1:5000/pic/demo@${OTHER_ID}`;
    const m = demoManifest();
    for (const c of m.containers) c.image = `127.0.0.1:5000/pic/demo:1@${OTHER_ID}`;
    const { plans } = await checkImages(new FakeRuntime(), await signed(m), [trusted.publicKey], 'enforce');
    assert.deepEqual(
      plans.map((p) => [p.image, p.pull, p.actual]),
      [
        [ref, ref, undefined],
        [ref, ref, undefined],
      ],
    );
    await assert.rejects(
      checkImages(new FakeRuntime(), m, [trusted.publicKey], 'enforce'),
      (err: any) => err.code === 'missing_bundle',
    );
    await assert.rejects(
      checkImages(new FakeRuntime(), await signed(m, stranger.privateKey), [trusted.publicKey], 'enforce'),
      (err: any) => err.code === 'untrusted_key',
    );
  });

  it('a registry image the engine has (by its RepoDigest) is run by that digest reference, not pulled', async () => {
    const ref = `registry.example:5000/pic/demo@${OTHER_ID}`;
    const m = demoManifest();
    for (const c of m.containers) c.image = `registry.example:5000/pic/demo:1@${OTHER_ID}`;
    const rt = new FakeRuntime();
    rt.repoDigests.set(ref, IMAGE_ID);
    const { plans } = await checkImages(rt, await signed(m), [trusted.publicKey], 'enforce');
    assert.deepEqual(
      plans.map((p) => [p.image, p.pull, p.actual]),
      [
        [ref, undefined, IMAGE_ID],
        [ref, undefined, IMAGE_ID],
      ],
    );
  });

  it('registryOf follows Docker: a dot, a port or localhost names a registry; anything else does not', () => {
    assert.equal(registryOf('127.0.0.1:5000/pic/demo'), '127.0.0.1:5000');
    assert.equal(registryOf('registry.example/pic/demo'), 'registry.example');
    assert.equal(registryOf('localhost/demo'), 'localhost');
    assert.equal(registryOf('pic/demo'), undefined);
    assert.equal(registryOf('pic-demo'), undefined);
  });
});
