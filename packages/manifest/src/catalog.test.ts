import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { stringify } from 'yaml';
import {
  acceptIndex,
  checkExpiry,
  checkRollback,
  indexEntryFor,
  signIndex,
  verifyIndex,
  verifyManifest,
} from './catalog.js';
import { canonicalBytes } from './canonical.js';
import { CatalogRefusal, type RefusalCode } from './errors.js';
import { generateStoreKeyPair, keyFingerprint, publicKeyPem } from './keys.js';
import type { CatalogIndex, ServiceManifest } from './schema.js';
import { signBytes } from './signing.js';
import { clone, validManifest } from './fixtures.test-support.js';

const store = generateStoreKeyPair();
const attacker = generateStoreKeyPair();
const NOW = new Date('2026-11-22T12:00:00Z');

function refusal(code: RefusalCode, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CatalogRefusal, `expected a CatalogRefusal, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  };
}

function manifestYaml(change?: (m: ServiceManifest) => void): string {
  const m = validManifest();
  change?.(m);
  return stringify(m);
}

function indexOf(version: number, manifests: ServiceManifest[], expires = '2027-01-01T00:00:00Z'): CatalogIndex {
  return { version, expires, services: manifests.map((m) => indexEntryFor(m, `manifests/${m.id}.yaml`)) };
}

async function signed(index: CatalogIndex, key = store.privateKey) {
  const { bundle } = await signIndex(index, key);
  return { text: `${JSON.stringify(index, null, 2)}\n`, bundle, bundleText: JSON.stringify(bundle) };
}

describe('catalog index: sign and verify', () => {
  it('signs the canonical bytes into a keyed, offline message-signature bundle', async () => {
    const index = indexOf(3, [validManifest()]);
    const { bytes, bundle } = await signIndex(index, store.privateKey);
    assert.deepEqual(bytes, canonicalBytes(index));
    const json = bundle as any;
    assert.match(json.mediaType, /^application\/vnd\.dev\.sigstore\.bundle/);
    assert.equal(json.verificationMaterial.publicKey.hint, keyFingerprint(store.publicKey));
    assert.deepEqual(json.verificationMaterial.tlogEntries ?? [], [], 'no transparency log: offline');
    assert.equal(json.verificationMaterial.x509CertificateChain, undefined, 'keyed, not Fulcio');
    assert.equal(
      Buffer.from(json.messageSignature.messageDigest.digest, 'base64').toString('hex'),
      createHash('sha256').update(bytes).digest('hex'),
    );
  });

  it('verifies and returns the parsed index, the signing key and the release digest', async () => {
    const index = indexOf(3, [validManifest()]);
    const s = await signed(index);
    for (const bundle of [s.bundle, s.bundleText, Buffer.from(s.bundleText)]) {
      const v = verifyIndex(s.text, bundle, [store.publicKey]);
      assert.deepEqual(v.index, index);
      assert.equal(v.signedBy, keyFingerprint(store.publicKey));
      assert.equal(v.digest, `sha256:${createHash('sha256').update(canonicalBytes(index)).digest('hex')}`);
    }
  });

  it('accepts trusted keys as KeyObjects, PEM text or {fingerprint, key}', async () => {
    const s = await signed(indexOf(1, []));
    const fp = keyFingerprint(store.publicKey);
    verifyIndex(s.text, s.bundle, [publicKeyPem(store.publicKey)]);
    verifyIndex(s.text, s.bundle, [{ fingerprint: fp, key: store.publicKey }]);
    verifyIndex(s.text, s.bundle, [{ fingerprint: `sha256:${fp.toUpperCase()}`, key: publicKeyPem(store.publicKey) }]);
    assert.throws(
      () => verifyIndex(s.text, s.bundle, [{ fingerprint: keyFingerprint(attacker.publicKey), key: store.publicKey }]),
      /does not match its key/,
    );
  });

  it("does not care about the file's whitespace or key order, only its data", async () => {
    const index = indexOf(2, [validManifest()]);
    const s = await signed(index);
    const reordered = JSON.stringify({
      services: index.services.map((e) => ({ digest: e.digest, manifest: e.manifest, version: e.version, id: e.id })),
      expires: index.expires,
      version: 2,
    });
    assert.equal(verifyIndex(reordered, s.bundle, [store.publicKey]).index.version, 2);
  });

  it('refuses a tampered index: any change to the data after signing', async () => {
    const index = indexOf(5, [validManifest()]);
    const s = await signed(index);
    const tampered: Array<(i: any) => void> = [
      (i) => (i.version = 6),
      (i) => (i.expires = '2099-01-01T00:00:00Z'),
      (i) => (i.services[0].digest = `sha256:${'0'.repeat(64)}`),
      (i) => (i.services[0].manifest = 'manifests/other.yaml'),
      (i) =>
        i.services.push({
          id: 'evil',
          version: '1.0.0',
          manifest: 'manifests/evil.yaml',
          digest: `sha256:${'e'.repeat(64)}`,
        }),
      (i) => (i.services = []),
    ];
    for (const change of tampered) {
      const copy = clone(index);
      change(copy);
      assert.throws(
        () => verifyIndex(JSON.stringify(copy), s.bundle, [store.publicKey]),
        refusal('signature_mismatch', /changed after signing/),
        change.toString(),
      );
    }
    assert.throws(
      () => verifyIndex(s.text.replace('"version": 5', '"version": 5,'), s.bundle, [store.publicKey]),
      refusal('signature_mismatch'),
      'garbled bytes',
    );
  });

  it("refuses a tampered index even when the bundle's digest was updated to match (the signature decides)", async () => {
    const index = indexOf(5, [validManifest()]);
    const s = await signed(index);
    const forged = { ...index, version: 50 };
    const bundle = clone(s.bundle) as any;
    bundle.messageSignature.messageDigest.digest = createHash('sha256').update(canonicalBytes(forged)).digest('base64');
    assert.throws(() => verifyIndex(JSON.stringify(forged), bundle, [store.publicKey]), refusal('signature_mismatch'));
  });

  it('refuses an index signed by an untrusted key', async () => {
    const s = await signed(indexOf(1, []), attacker.privateKey);
    assert.throws(
      () => verifyIndex(s.text, s.bundle, [store.publicKey]),
      refusal('untrusted_key', new RegExp(keyFingerprint(attacker.publicKey))),
    );
    assert.throws(() => verifyIndex(s.text, s.bundle, []), refusal('untrusted_key', /trusts no ECDSA P-256 store key/));
  });

  it("refuses an untrusted key that claims a trusted key's name", async () => {
    const index = indexOf(1, []);
    const bytes = canonicalBytes(index);
    const real = await signBytes(bytes, store.privateKey);
    const forged = clone(real) as any;
    forged.messageSignature.signature = cryptoSign('sha256', bytes, attacker.privateKey).toString('base64');
    assert.throws(
      () => verifyIndex(JSON.stringify(index), forged, [store.publicKey]),
      refusal('signature_mismatch', /signed by a key other than/),
    );
  });

  it('refuses a missing bundle', async () => {
    const s = await signed(indexOf(1, []));
    for (const missing of [undefined, null, '', '  \n', Buffer.alloc(0)]) {
      assert.throws(
        () => verifyIndex(s.text, missing, [store.publicKey]),
        refusal('missing_bundle', /without a signature bundle/),
      );
    }
    assert.throws(
      () => verifyIndex('not json', undefined, [store.publicKey]),
      refusal('missing_bundle'),
      'an unsigned garbled index is refused as unsigned',
    );
  });

  it('refuses a garbled bundle', async () => {
    const s = await signed(indexOf(1, []));
    const noHint = clone(s.bundle) as any;
    delete noHint.verificationMaterial.publicKey;
    const badSig = clone(s.bundle) as any;
    badSig.messageSignature.signature = Buffer.from('garbage').toString('base64');
    const dsse = clone(s.bundle) as any;
    delete dsse.messageSignature;
    dsse.dsseEnvelope = { payload: 'e30=', payloadType: 'application/json', signatures: [{ sig: 'AA==', keyid: '' }] };
    const cases: Array<[unknown, RefusalCode, RegExp]> = [
      ['{"mediaType": ', 'malformed_bundle', /not JSON/],
      ['[1,2]', 'malformed_bundle', /not a JSON object/],
      ['{}', 'malformed_bundle', /not a valid sigstore bundle/],
      [{ ...s.bundle, mediaType: 'text/plain' }, 'malformed_bundle', /not a valid sigstore bundle/],
      [noHint, 'malformed_bundle', /does not name a public key|not a valid sigstore bundle/],
      [dsse, 'malformed_bundle', /not a message signature/],
      [badSig, 'signature_mismatch', /does not match its signature/],
      [s.bundleText.slice(0, -20), 'malformed_bundle', /not JSON/],
    ];
    for (const [bundle, code, message] of cases) {
      assert.throws(
        () => verifyIndex(s.text, bundle, [store.publicKey]),
        refusal(code, message),
        JSON.stringify(bundle).slice(0, 80),
      );
    }
  });

  it('refuses signed bytes that are not an index', async () => {
    const data = { hello: 'world' };
    const bundle = await signBytes(canonicalBytes(data), store.privateKey);
    assert.throws(
      () => verifyIndex(JSON.stringify(data), bundle, [store.publicKey]),
      refusal('malformed_index', /signed but not a valid index/),
    );
    const dup = {
      version: 1,
      expires: '2027-01-01T00:00:00Z',
      services: [
        indexEntryFor(validManifest(), 'manifests/a.yaml'),
        indexEntryFor(validManifest(), 'manifests/b.yaml'),
      ],
    };
    const dupBundle = await signBytes(canonicalBytes(dup), store.privateKey);
    assert.throws(
      () => verifyIndex(JSON.stringify(dup), dupBundle, [store.publicKey]),
      refusal('malformed_index', /repeats service "demo"/),
    );
  });

  it('uses only ECDSA P-256 trusted keys, and says so when the bundle names another kind', async () => {
    const ed = generateKeyPairSync('ed25519');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const s = await signed(indexOf(1, []));
    // Other trusted keys (a cell may trust Ed25519 keys for other things) do not get in the way.
    assert.equal(verifyIndex(s.text, s.bundle, [ed.publicKey, store.publicKey]).index.version, 1);
    assert.throws(
      () => verifyIndex(s.text, s.bundle, [ed.publicKey]),
      refusal('untrusted_key', /trusts no ECDSA P-256 store key/),
    );
    const edFingerprint = createHash('sha256')
      .update(ed.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex');
    const claimsEd = clone(s.bundle) as any;
    claimsEd.verificationMaterial.publicKey.hint = edFingerprint;
    assert.throws(
      () => verifyIndex(s.text, claimsEd, [ed.publicKey, store.publicKey]),
      refusal('untrusted_key', /not an ECDSA P-256 key/),
    );
    assert.throws(() => keyFingerprint(p384.publicKey), /secp384r1/);
    await assert.rejects(signBytes(Buffer.from('x'), p384.privateKey as never), /must be ECDSA P-256/);
  });
});

describe('catalog policy', () => {
  it('rollback: refuses a version below the highest accepted; the same version is a re-read', async () => {
    const index = indexOf(7, []);
    assert.doesNotThrow(() => checkRollback(index, undefined));
    assert.doesNotThrow(() => checkRollback(index, 7));
    assert.doesNotThrow(() => checkRollback(index, 6));
    assert.throws(() => checkRollback(index, 8), refusal('rollback', /version 7, older than version 8/));
    const s = await signed(index);
    assert.throws(
      () =>
        acceptIndex({
          indexBytes: s.text,
          bundle: s.bundle,
          trustedKeys: [store.publicKey],
          highestAcceptedVersion: 9,
          now: NOW,
        }),
      refusal('rollback'),
    );
    assert.equal(
      acceptIndex({
        indexBytes: s.text,
        bundle: s.bundle,
        trustedKeys: [store.publicKey],
        highestAcceptedVersion: 7,
        now: NOW,
      }).index.version,
      7,
    );
  });

  it('freeze: refuses an index once its expiry time is reached', async () => {
    const index = indexOf(1, [], '2026-11-22T12:00:00Z');
    assert.doesNotThrow(() => checkExpiry(index, new Date('2026-11-22T11:59:59.999Z')));
    assert.throws(
      () => checkExpiry(index, new Date('2026-11-22T12:00:00Z')),
      refusal('expired', /expired at 2026-11-22T12:00:00Z/),
    );
    assert.throws(() => checkExpiry(index, new Date('2030-01-01T00:00:00Z')), refusal('expired'));
    const s = await signed(index);
    assert.throws(
      () =>
        acceptIndex({
          indexBytes: s.text,
          bundle: s.bundle,
          trustedKeys: [store.publicKey],
          now: new Date('2026-12-01T00:00:00Z'),
        }),
      refusal('expired'),
    );
  });

  it('checks the signature before rollback and expiry (an unsigned index says it is unsigned)', async () => {
    const index = indexOf(1, [], '2000-01-01T00:00:00Z');
    assert.throws(
      () =>
        acceptIndex({
          indexBytes: JSON.stringify(index),
          bundle: undefined,
          trustedKeys: [store.publicKey],
          highestAcceptedVersion: 5,
          now: NOW,
        }),
      refusal('missing_bundle'),
    );
  });

  it('accepts a manifest whose canonical digest the signed index lists, in any layout', async () => {
    const m = validManifest();
    const index = indexOf(1, [m]);
    assert.deepEqual(verifyManifest(index, 'demo', stringify(m)), m);
    assert.deepEqual(verifyManifest(index, 'demo', `# a comment\n${stringify(m, { indent: 6 })}`), m);
  });

  it('refuses a manifest changed after signing', () => {
    const index = indexOf(1, [validManifest()]);
    const changed = manifestYaml((m) => (m.containers[0]!.image = `evil/demo@sha256:${'f'.repeat(64)}`));
    assert.throws(() => verifyManifest(index, 'demo', changed), refusal('digest_mismatch', /changed after signing/));
    assert.throws(() => verifyManifest(index, 'demo', 'id: [broken'), refusal('digest_mismatch', /not valid YAML/));
  });

  it('mix-and-match: refuses a manifest from another signed release', async () => {
    const v1 = validManifest();
    const v2 = validManifest();
    v2.version = '1.3.0';
    v2.containers[0]!.image = `pic/demo@sha256:${'d'.repeat(64)}`;
    const index1 = indexOf(1, [v1]);
    const index2 = indexOf(2, [v2]);
    // Both releases are genuinely signed; only their pairing is wrong.
    const s2 = await signed(index2);
    const accepted = acceptIndex({ indexBytes: s2.text, bundle: s2.bundle, trustedKeys: [store.publicKey], now: NOW });
    assert.throws(
      () => verifyManifest(accepted.index, 'demo', stringify(v1)),
      refusal('digest_mismatch', new RegExp(index2.services[0]!.digest)),
    );
    assert.deepEqual(verifyManifest(accepted.index, 'demo', stringify(v2)), v2);
    assert.deepEqual(verifyManifest(index1, 'demo', stringify(v1)), v1);
  });

  it('refuses a service the index does not list, and a manifest that is not the listed service', () => {
    const m = validManifest();
    const index = indexOf(1, [m]);
    assert.throws(
      () => verifyManifest(index, 'email', stringify(m)),
      refusal('not_listed', /does not list a service "email"/),
    );
    const wrong = clone(index);
    wrong.services[0]!.version = '9.9.9';
    assert.throws(
      () => verifyManifest(wrong, 'demo', stringify(m)),
      refusal('manifest_mismatch', /is demo 1\.2\.3, but the signed index lists demo 9\.9\.9/),
    );
  });

  it('refuses a signed manifest that is not valid, naming the field', () => {
    const bad = clone(validManifest()) as any;
    bad.containers[0].image = 'pic/demo:latest';
    const index: CatalogIndex = {
      version: 1,
      expires: '2027-01-01T00:00:00Z',
      services: [
        {
          ...indexEntryFor(validManifest(), 'manifests/demo.yaml'),
          digest: `sha256:${createHash('sha256').update(canonicalBytes(bad)).digest('hex')}`,
        },
      ],
    };
    assert.throws(
      () => verifyManifest(index, 'demo', stringify(bad)),
      refusal('invalid_manifest', /containers\.0\.image must be pinned by digest/),
    );
  });
});

describe('trust key rotation', () => {
  it('adds a new key while the old one still signs, then removes the old one', async () => {
    const oldKey = store;
    const newKey = generateStoreKeyPair();
    const byOld = await signed(indexOf(10, []), oldKey.privateKey);
    const byNew = await signed(indexOf(11, []), newKey.privateKey);
    const accept = (s: { text: string; bundle: unknown }, keys: unknown[], highest?: number) =>
      acceptIndex({
        indexBytes: s.text,
        bundle: s.bundle,
        trustedKeys: keys as never,
        highestAcceptedVersion: highest,
        now: NOW,
      });

    // 1. Only the old key is trusted: the old key's index is accepted, the new one's is not yet.
    assert.equal(accept(byOld, [oldKey.publicKey]).signedBy, keyFingerprint(oldKey.publicKey));
    assert.throws(() => accept(byNew, [oldKey.publicKey]), refusal('untrusted_key'));
    // 2. Both trusted: either signature is accepted.
    assert.equal(accept(byOld, [oldKey.publicKey, newKey.publicKey], 10).signedBy, keyFingerprint(oldKey.publicKey));
    assert.equal(accept(byNew, [oldKey.publicKey, newKey.publicKey], 10).signedBy, keyFingerprint(newKey.publicKey));
    // 3. Old key removed: its signatures are refused, the new key's still accepted.
    assert.throws(
      () => accept(byOld, [newKey.publicKey]),
      refusal('untrusted_key', new RegExp(keyFingerprint(oldKey.publicKey))),
    );
    assert.equal(accept(byNew, [newKey.publicKey], 11).index.version, 11);
  });
});
