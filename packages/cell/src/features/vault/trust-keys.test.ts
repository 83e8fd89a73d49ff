import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Transaction } from 'kysely';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import type { CellDatabase } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { HttpError } from '../../http/errors.js';
import {
  addTrustKey,
  deleteTrustKey,
  listTrustKeys,
  listTrustedKeys,
  parseTrustKey,
  type ParsedTrustKey,
} from './trust-keys.js';

const run = promisify(execFile);
const pemOf = (type: 'ec' | 'ed25519' | 'rsa', namedCurve?: string) => {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: namedCurve! })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  return {
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey: pair.privateKey,
  };
};
const parsed = (pem: string): ParsedTrustKey => {
  const p = parseTrustKey(pem);
  if ('problem' in p) throw new Error(p.problem);
  return p;
};

describe('trust keys', () => {
  let dir: string;
  let database: CellDatabase;
  let temp: TempDatabase;
  before(async () => {
    temp = await openTempDatabase('pic-trust-');
    ({ dir, database } = temp);
  });
  after(async () => {
    await temp.remove();
  });

  it('accepts ECDSA P-256 and Ed25519 public keys; the fingerprint is SHA-256 of the DER SPKI (checked with openssl)', async () => {
    for (const [type, curve, expected] of [
      ['ec', 'prime256v1', 'ecdsa-p256'],
      ['ed25519', undefined, 'ed25519'],
    ] as const) {
      const { publicPem } = pemOf(type, curve);
      const key = parsed(`\n  ${publicPem}\n`); // surrounding whitespace is fine
      assert.equal(key.keyType, expected);
      const pemPath = join(dir, `${expected}.pem`);
      const derPath = join(dir, `${expected}.der`);
      writeFileSync(pemPath, publicPem);
      await run('openssl', ['pkey', '-pubin', '-in', pemPath, '-outform', 'DER', '-out', derPath]);
      assert.equal(key.fingerprint, createHash('sha256').update(readFileSync(derPath)).digest('hex'));
      assert.equal(key.pem, publicPem.trim());
    }
  });

  it('refuses private keys (without echoing them), other algorithms, and anything that is not one PEM public key', () => {
    const ec = pemOf('ec', 'prime256v1');
    const body = ec.privatePem.split('\n')[1]!;
    const priv = parseTrustKey(ec.privatePem);
    assert.ok('problem' in priv && /private key/.test(priv.problem));
    assert.ok(!JSON.stringify(priv).includes(body), 'the refusal does not repeat the key');

    const rsa = parseTrustKey(pemOf('rsa').publicPem);
    assert.ok('problem' in rsa && /P-256 or Ed25519.*rsa/.test(rsa.problem), JSON.stringify(rsa));
    const p384 = parseTrustKey(pemOf('ec', 'secp384r1').publicPem);
    assert.ok('problem' in p384 && /secp384r1/.test(p384.problem), JSON.stringify(p384));

    const good = ec.publicPem.trim();
    for (const bad of [
      '',
      'not a key',
      good.replace(/[A-Za-z]{8}/, 'AAAAAAAA'), // corrupt body
      `${good}\n${good}`, // two keys
      good.replace(/PUBLIC KEY/g, 'CERTIFICATE'),
      good.replace('-----END PUBLIC KEY-----', ''),
    ]) {
      const res = parseTrustKey(bad);
      assert.ok('problem' in res, `refused: ${JSON.stringify(bad.slice(0, 40))}`);
    }
  });

  it('adds, lists and deletes; 409 for a taken name or an already trusted key; 404 for an unknown name', async () => {
    const a = pemOf('ec', 'prime256v1');
    const b = pemOf('ed25519');
    const tx = <T>(fn: (trx: Transaction<Database>) => Promise<T>) => database.db.transaction().execute(fn);
    await tx((trx) => addTrustKey(trx, 'store', parsed(a.publicPem)));
    await tx((trx) => addTrustKey(trx, 'backup-store', parsed(b.publicPem)));
    await assert.rejects(
      tx((trx) => addTrustKey(trx, 'store', parsed(pemOf('ed25519').publicPem))),
      (e: HttpError) => e.status === 409 && 'name' in e.fields,
    );
    await assert.rejects(
      tx((trx) => addTrustKey(trx, 'again', parsed(a.publicPem))),
      (e: HttpError) => e.status === 409 && /"store"/.test(e.message),
    );
    assert.deepEqual(
      (await listTrustKeys(database.db)).map((k) => [k.name, k.key_type]),
      [
        ['backup-store', 'ed25519'],
        ['store', 'ecdsa-p256'],
      ],
    );

    // The store gets KeyObjects that verify signatures made with the matching private keys.
    const trusted = await listTrustedKeys(database.db);
    const payload = Buffer.from('catalog bytes');
    const store = trusted.find((k) => k.name === 'store')!;
    assert.ok(verify('sha256', payload, store.key, sign('sha256', payload, a.privateKey)));
    assert.ok(!verify('sha256', Buffer.from('tampered'), store.key, sign('sha256', payload, a.privateKey)));
    const ed = trusted.find((k) => k.name === 'backup-store')!;
    assert.ok(verify(null, payload, ed.key, sign(null, payload, b.privateKey)));

    await tx((trx) => deleteTrustKey(trx, 'store'));
    await assert.rejects(
      tx((trx) => deleteTrustKey(trx, 'store')),
      (e: HttpError) => e.status === 404,
    );
    assert.deepEqual(
      (await listTrustKeys(database.db)).map((k) => k.name),
      ['backup-store'],
    );
    // Once removed, the same key may be added again.
    await tx((trx) => addTrustKey(trx, 'store', parsed(a.publicPem)));
  });
});
