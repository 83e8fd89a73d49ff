import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { openDatabase, type CellDatabase } from '../../db/database.js';
import type { HttpError } from '../../http/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { writeIdentity } from '../config/service.js';
import {
  CA_KEY_SECRET,
  CertificateAuthority,
  certificateKeySecret,
  nameProblem,
  newSerial,
  normalizeSerial,
  type IssuedCertificate,
} from './ca.js';
import { listCertificates } from './queries.js';
import { openVault, type Vault } from './vault.js';

const run = promisify(execFile);
const openssl = async (...args: string[]) => (await run('openssl', args)).stdout;

describe('certificate authority', () => {
  let dir: string;
  let database: CellDatabase;
  let vault: Vault;
  let ca: CertificateAuthority;
  let n = 0;
  const file = (name: string, text: string) => {
    const path = join(dir, `${++n}-${name}`);
    writeFileSync(path, text);
    return path;
  };
  const record = (issued: IssuedCertificate) => database.db.transaction().execute((trx) => ca.record(trx, issued));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pic-ca-'));
    database = openDatabase(join(dir, 'cell.db'));
    await database.migrate();
    await writeIdentity(database.db, { cell_name: 'home', domain: 'home.example.org' });
    vault = await openVault({ dataDir: dir, db: database.db, logger: silentLogger });
    ca = new CertificateAuthority(database.db, vault, silentLogger);
  });
  after(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a CA on first use, its key in the vault, and the same CA thereafter', async () => {
    const pem = await ca.certificatePem();
    const text = await openssl('x509', '-in', file('ca.pem', pem), '-noout', '-text');
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    assert.match(text, /Subject: CN = home cell CA [0-9a-f]{8}, O = Personal Internet Cell/);
    assert.match(text, /ecdsa-with-SHA256/);
    assert.match(text, /prime256v1/);
    assert.match((await vault.get(CA_KEY_SECRET)) ?? '', /^-----BEGIN PRIVATE KEY-----/);
    const other = new CertificateAuthority(database.db, vault, silentLogger);
    assert.equal(await other.certificatePem(), pem, 'a second instance loads the same CA');
  });

  it('issues a server certificate that openssl verifies against the CA, with the key it hands out', async () => {
    const issued = await ca.issue({ name: 'www.home.example.org', type: 'server', days: 30 });
    await record(issued);
    const caPath = file('ca.pem', await ca.certificatePem());
    const certPath = file('leaf.pem', issued.certificatePem);
    assert.equal((await openssl('verify', '-CAfile', caPath, certPath)).trim(), `${certPath}: OK`);
    const text = await openssl('x509', '-in', certPath, '-noout', '-text');
    assert.match(text, /DNS:www\.home\.example\.org/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Subject: CN = www\.home\.example\.org/);

    // The private key belongs to the certificate.
    const cert = new X509Certificate(issued.certificatePem);
    const fromKey = createPublicKey(createPrivateKey(issued.privateKeyPem)).export({ type: 'spki', format: 'der' });
    assert.deepEqual(cert.publicKey.export({ type: 'spki', format: 'der' }), fromKey);
    assert.equal(cert.serialNumber.toLowerCase(), issued.row.serial);
    const days = (Date.parse(issued.row.not_after) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `about 30 days: ${days}`);

    // The key is in the vault under a name derived from the serial; the index row holds no key.
    assert.equal(await vault.get(certificateKeySecret(issued.row.serial)), issued.privateKeyPem);
    const [row] = (await listCertificates(database.db)).filter((r) => r.serial === issued.row.serial);
    assert.ok(row && !JSON.stringify(row).includes('PRIVATE KEY'));
  });

  it('issues client certificates for client authentication', async () => {
    const issued = await ca.issue({ name: 'alice.home.example.org', type: 'client', days: 1 });
    const text = await openssl('x509', '-in', file('client.pem', issued.certificatePem), '-noout', '-text');
    assert.match(text, /TLS Web Client Authentication/);
    assert.doesNotMatch(text, /TLS Web Server Authentication/);
  });

  it('never issues past the CA own expiry', async () => {
    const issued = await ca.issue(
      { name: 'long.home.example.org', type: 'server', days: 825 },
      new Date(Date.now() + 3640 * 86_400_000),
    );
    const caCert = new X509Certificate(await ca.certificatePem());
    assert.ok(Date.parse(issued.row.not_after) <= Date.parse(caCert.validTo));
  });

  it('revokes (404 unknown, 409 twice), deletes the key, and publishes a CRL openssl parses and enforces', async () => {
    const revoked = await ca.issue({ name: 'old.home.example.org', type: 'server', days: 30 });
    const kept = await ca.issue({ name: 'kept.home.example.org', type: 'server', days: 30 });
    await record(revoked);
    await record(kept);

    const row = await database.db.transaction().execute((trx) => ca.revoke(trx, revoked.row.serial, 'key_compromise'));
    assert.ok(row.revoked_at);
    assert.equal(row.key_secret, null);
    assert.equal(
      await vault.get(certificateKeySecret(revoked.row.serial)),
      undefined,
      'the revoked key is gone from the vault',
    );
    assert.ok(await vault.get(certificateKeySecret(kept.row.serial)), 'other keys stay');

    await assert.rejects(
      database.db.transaction().execute((trx) => ca.revoke(trx, revoked.row.serial, 'superseded')),
      (err: HttpError) => err.status === 409,
    );
    await assert.rejects(
      database.db.transaction().execute((trx) => ca.revoke(trx, newSerial(), 'superseded')),
      (err: HttpError) => err.status === 404,
    );

    const crl = await ca.crl();
    assert.match(crl, /^-----BEGIN X509 CRL-----\n/);
    const crlPath = file('ca.crl', crl);
    const text = await openssl('crl', '-inform', 'PEM', '-in', crlPath, '-noout', '-text');
    assert.match(text, /Certificate Revocation List/);
    assert.match(text, /Issuer: CN = home cell CA/);
    assert.match(text, /X509v3 CRL Number/);
    assert.ok(text.includes(`Serial Number: ${revoked.row.serial.toUpperCase()}`), text);
    assert.ok(!text.includes(kept.row.serial.toUpperCase()), 'only revoked certificates are listed');
    assert.match(text, /Key Compromise/);

    // openssl checks the CRL's signature against the CA and refuses the revoked certificate only.
    const caPath = file('ca.pem', await ca.certificatePem());
    const check = (cert: string) =>
      run('openssl', ['verify', '-crl_check', '-CRLfile', crlPath, '-CAfile', caPath, file('c.pem', cert)]);
    await assert.rejects(check(revoked.certificatePem), (err: { stdout: string; stderr: string }) =>
      /certificate revoked/.test(err.stdout + err.stderr),
    );
    assert.match((await check(kept.certificatePem)).stdout, /: OK/);
  });

  it('keeps working after the vault key rotates (the CA key is re-encrypted with everything else)', async () => {
    const pem = await ca.certificatePem();
    await vault.rotate();
    const fresh = new CertificateAuthority(database.db, vault, silentLogger);
    assert.equal(await fresh.certificatePem(), pem);
    const issued = await fresh.issue({ name: 'after.home.example.org', type: 'server', days: 2 });
    const caPath = file('ca.pem', pem);
    assert.match(await openssl('verify', '-CAfile', caPath, file('after.pem', issued.certificatePem)), /: OK/);
  });

  it('accepts only names in the cell domain; serials normalise to lowercase hex', () => {
    const domain = 'home.example.org';
    assert.equal(nameProblem('home.example.org', domain), undefined);
    assert.equal(nameProblem('a.b.home.example.org', domain), undefined);
    assert.equal(nameProblem('*.home.example.org', domain), undefined);
    assert.match(nameProblem('evil.com', domain) ?? '', /home\.example\.org/);
    assert.ok(nameProblem('nothome.example.org', domain), 'a suffix match must be on a label boundary');
    assert.ok(nameProblem('home.example.org.evil.com', domain));
    assert.equal(normalizeSerial('7F:11'), '7f11');
    assert.equal(normalizeSerial('../etc'), undefined);
    assert.match(newSerial(), /^[4-7][0-9a-f]{31}$/);
  });
});
