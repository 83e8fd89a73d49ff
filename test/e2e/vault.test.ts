import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { completeSetup, IDENTITY } from '../support/client.js';
import { insertUser } from '../support/db.js';
import { assertError } from '../support/expect.js';
import {
  loadAge,
  openssl,
  opensslFails,
  readIdentity,
  RecordingClient,
  tempFile,
  verifyCert,
  type Age,
} from './vault-helpers.js';

/** A few distinctive 48-character pieces of a PEM's base64 body: enough to spot it anywhere. */
function pemPieces(pem: string): string[] {
  const body = pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  return [body.slice(0, 48), body.slice(48, 96), body.slice(-60, -12)].filter((p) => p.length === 48);
}

describe('vault API (real cell process)', () => {
  let cell: CellProcess;
  let api: RecordingClient;
  let age: Age;
  let tmp: string;
  /** Every private key the API handed out, and the responses that were allowed to carry them. */
  const handedOut: string[] = [];
  const issueResponses = new Set<unknown>();

  before(async () => {
    age = await loadAge();
    tmp = mkdtempSync(join(tmpdir(), 'pic-vault-e2e-'));
    cell = await startCellProcess();
    api = new RecordingClient(cell.url);
    await completeSetup(api);
  });
  after(async () => {
    await cell.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  const issue = async (body: unknown) => {
    const res = await api.post('/api/vault/certs', body);
    if (res.status === 201) {
      handedOut.push(res.body.private_key_pem);
      issueResponses.add(res);
    }
    return res;
  };

  it('gives out the age recipient to admins only; it matches the key file, which is mode 0600', async () => {
    const res = await api.get('/api/vault/age-public-key');
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.recipient, /^age1[0-9a-z]{58}$/);
    assert.deepEqual(Object.keys(res.body).sort(), ['ok', 'recipient']);
    const keyFile = join(cell.dataDir, 'vault.key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(await age.identityToRecipient(readIdentity(cell.dataDir)), res.body.recipient);

    assertError(await new RecordingClient(cell.url).get('/api/vault/age-public-key'), 401);
    await insertUser(cell.dataDir, { username: 'pat', password: 'a peer password 123', role: 'peer' });
    const peer = new RecordingClient(cell.url);
    assert.equal((await peer.login('pat', 'a peer password 123')).status, 200);
    assertError(await peer.get('/api/vault/age-public-key'), 403, { code: 'wrong_role' });
    assertError(await peer.get('/api/vault/ca.crt'), 403);
    assertError(await peer.post('/api/vault/rotate'), 403);
  });

  it('serves the CA certificate as a PEM download that openssl parses', async () => {
    const res = await api.get('/api/vault/ca.crt');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-pem-file');
    assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename=".+\.crt"/);
    assert.match(res.text, /^-----BEGIN CERTIFICATE-----\n/);
    const text = await openssl('x509', '-in', tempFile(tmp, 'ca.pem', res.text), '-noout', '-text');
    assert.match(text, /CA:TRUE/);
    assert.match(text, new RegExp(`Subject: CN = ${IDENTITY.cell_name} cell CA`));
    assert.equal((await api.get('/api/vault/ca.crt')).text, res.text, 'the same CA every time');
  });

  it('issues server and client certificates for names in the cell domain, the key handed out once', async () => {
    const server = await issue({ name: `www.${IDENTITY.domain}`, type: 'server', days: 90 });
    assert.equal(server.status, 201, server.text);
    const { certificate, certificate_pem, private_key_pem, ca_certificate_pem } = server.body;
    assert.match(certificate.serial, /^[0-9a-f]{32}$/);
    assert.deepEqual(certificate.sans, [`www.${IDENTITY.domain}`]);
    assert.equal(certificate.type, 'server');
    assert.equal(certificate.revoked, false);
    assert.match(private_key_pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const caPath = tempFile(tmp, 'ca.pem', ca_certificate_pem);
    const certPath = tempFile(tmp, 'www.pem', certificate_pem);
    assert.match(await openssl('verify', '-CAfile', caPath, certPath), /: OK/);
    const ext = await openssl('x509', '-in', certPath, '-noout', '-ext', 'subjectAltName,extendedKeyUsage');
    assert.match(ext, /DNS:www\.home\.example\.org/);
    assert.match(ext, /TLS Web Server Authentication/);
    const days = (Date.parse(new X509Certificate(certificate_pem).validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 89 && days <= 90, `90 days: ${days}`);

    const client = await issue({ name: `alice.${IDENTITY.domain}`, type: 'client' });
    assert.equal(client.status, 201, client.text);
    assert.match(
      await openssl(
        'x509',
        '-in',
        tempFile(tmp, 'alice.pem', client.body.certificate_pem),
        '-noout',
        '-ext',
        'extendedKeyUsage',
      ),
      /TLS Web Client Authentication/,
    );
    assert.match(await verifyCert(tmp, caPath, client.body.certificate_pem), /: OK/);

    // The certificate can be fetched again later; the key cannot.
    const again = await api.get(`/api/vault/certs/${certificate.serial}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.certificate_pem, certificate_pem);
    assert.ok(!again.text.includes('PRIVATE KEY'));
  });

  it('refuses names outside the cell domain and bad input, naming the field', async () => {
    for (const [body, field] of [
      [{ name: 'www.example.com', type: 'server' }, 'name'],
      [{ name: `evil${IDENTITY.domain}`, type: 'server' }, 'name'],
      [{ name: `${IDENTITY.domain}.evil.com`, type: 'server' }, 'name'],
      [{ name: 'Not A Name', type: 'server' }, 'name'],
      [{ name: `*.${IDENTITY.domain}`, type: 'client' }, 'name'],
      [{ name: `ok.${IDENTITY.domain}`, type: 'ca' }, 'type'],
      [{ name: `ok.${IDENTITY.domain}` }, 'type'],
      [{ name: `ok.${IDENTITY.domain}`, type: 'server', days: 0 }, 'days'],
      [{ name: `ok.${IDENTITY.domain}`, type: 'server', days: 10_000 }, 'days'],
      [{ name: `ok.${IDENTITY.domain}`, type: 'server', extra: 1 }, 'extra'],
    ] as const) {
      assertError(await issue(body), 400, { fields: [field], context: JSON.stringify(body) });
    }
    const outside = await issue({ name: 'www.example.com', type: 'server' });
    assert.match(outside.body.fields.name, /home\.example\.org/, 'the message says which domain is allowed');
    const wildcard = await issue({ name: `*.${IDENTITY.domain}`, type: 'server', days: 7 });
    assert.equal(wildcard.status, 201, wildcard.text);
  });

  it('lists certificates without keys, revokes (409 twice, 404 unknown), and serves a CRL openssl enforces', async () => {
    const doomed = await issue({ name: `old.${IDENTITY.domain}`, type: 'server', days: 30 });
    const serial: string = doomed.body.certificate.serial;

    const list = await api.get('/api/vault/certs');
    assert.equal(list.status, 200);
    const entry = list.body.certificates.find((c: { serial: string }) => c.serial === serial);
    assert.deepEqual(Object.keys(entry).sort(), [
      'created_at',
      'name',
      'not_after',
      'not_before',
      'revocation_reason',
      'revoked',
      'revoked_at',
      'sans',
      'serial',
      'subject',
      'type',
    ]);
    assert.equal(entry.subject, `CN=old.${IDENTITY.domain}`);
    assert.ok(!list.text.includes('PRIVATE KEY') && !list.text.includes('key_secret'));

    const revoked = await api.post(`/api/vault/certs/${serial}/revoke`, { reason: 'key_compromise' });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.certificate.revoked, true);
    assert.equal(revoked.body.certificate.revocation_reason, 'key_compromise');
    assertError(await api.post(`/api/vault/certs/${serial}/revoke`, {}), 409);
    assertError(await api.post(`/api/vault/certs/${serial.toUpperCase()}/revoke`, {}), 409, {
      context: 'serials are case-insensitive',
    });
    assertError(await api.post(`/api/vault/certs/${'7'.repeat(32)}/revoke`, {}), 404);
    assertError(await api.post('/api/vault/certs/not-a-serial/revoke', {}), 404);
    assertError(await api.post(`/api/vault/certs/${serial}/revoke`, { reason: 'bored' }), 400, { fields: ['reason'] });
    assertError(await api.get(`/api/vault/certs/${'7'.repeat(32)}`), 404);
    const listed = (await api.get('/api/vault/certs')).body.certificates.find(
      (c: { serial: string }) => c.serial === serial,
    );
    assert.equal(listed.revoked, true);
    assert.ok(listed.revoked_at);

    const crl = await api.get('/api/vault/crl');
    assert.equal(crl.status, 200);
    assert.equal(crl.headers.get('content-type'), 'application/x-pem-file');
    const crlPath = tempFile(tmp, 'cell.crl', crl.text);
    const text = await openssl('crl', '-inform', 'PEM', '-in', crlPath, '-noout', '-text');
    assert.ok(text.includes(`Serial Number: ${serial.toUpperCase()}`), text);
    assert.match(text, /Key Compromise/);

    const caPath = tempFile(tmp, 'ca.pem', (await api.get('/api/vault/ca.crt')).text);
    const out = await opensslFails(
      'verify',
      '-crl_check',
      '-CRLfile',
      crlPath,
      '-CAfile',
      caPath,
      tempFile(tmp, 'old.pem', doomed.body.certificate_pem),
    );
    assert.match(out, /certificate revoked/);
    const live = await issue({ name: `live.${IDENTITY.domain}`, type: 'server', days: 30 });
    assert.match(await verifyCert(tmp, caPath, live.body.certificate_pem, crlPath), /: OK/);
  });

  it('manages trust keys: PEM P-256 and Ed25519 only, 409 on a duplicate name or key, 404 on unknown', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const edPem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();

    // The repository ships no store key (services-index/README.md), so a new cell trusts none.
    assert.deepEqual((await api.get('/api/vault/trust-keys')).body.trust_keys, []);

    const added = await api.post('/api/vault/trust-keys', { name: 'pic-store', public_key: ecPem });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.body.trust_key.key_type, 'ecdsa-p256');
    assert.match(added.body.trust_key.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal((await api.post('/api/vault/trust-keys', { name: 'ed', public_key: edPem })).status, 201);

    assertError(await api.post('/api/vault/trust-keys', { name: 'pic-store', public_key: edPem }), 409, {
      fields: ['name'],
    });
    assertError(await api.post('/api/vault/trust-keys', { name: 'copy', public_key: ecPem }), 409, {
      fields: ['public_key'],
    });

    const privatePem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const refused = await api.post('/api/vault/trust-keys', { name: 'oops', public_key: privatePem });
    assertError(refused, 400, { fields: ['public_key'] });
    for (const piece of pemPieces(privatePem))
      assert.ok(!refused.text.includes(piece), 'a refused private key is not echoed');
    const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    assertError(await api.post('/api/vault/trust-keys', { name: 'rsa', public_key: rsaPem }), 400, {
      fields: ['public_key'],
    });
    assertError(await api.post('/api/vault/trust-keys', { name: 'junk', public_key: 'hello' }), 400, {
      fields: ['public_key'],
    });
    assertError(await api.post('/api/vault/trust-keys', { name: 'Bad Name', public_key: edPem }), 400, {
      fields: ['name'],
    });

    const list = await api.get('/api/vault/trust-keys');
    assert.deepEqual(
      list.body.trust_keys.map((k: { name: string }) => k.name),
      ['ed', 'pic-store'],
    );
    assert.equal(list.body.trust_keys[1].public_key, ecPem.trim());

    assert.equal((await api.delete('/api/vault/trust-keys/ed')).status, 200);
    assertError(await api.delete('/api/vault/trust-keys/ed'), 404);
    assertError(await api.delete('/api/vault/trust-keys/ed', { csrf: false }), 403, { code: 'csrf' });
    assert.deepEqual(
      (await api.get('/api/vault/trust-keys')).body.trust_keys.map((k: { name: string }) => k.name),
      ['pic-store'],
    );
  });

  it('rotates the vault key through the API; the CA keeps signing and the key file follows', async () => {
    const before = (await api.get('/api/vault/age-public-key')).body.recipient;
    const caBefore = (await api.get('/api/vault/ca.crt')).text;
    const res = await api.post('/api/vault/rotate');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.previous_recipient, before);
    assert.notEqual(res.body.recipient, before);
    assert.ok(res.body.secrets >= handedOut.length, `every secret was re-encrypted: ${res.text}`);
    assert.equal((await api.get('/api/vault/age-public-key')).body.recipient, res.body.recipient);
    assert.equal(await age.identityToRecipient(readIdentity(cell.dataDir)), res.body.recipient);
    assert.equal(statSync(join(cell.dataDir, 'vault.key')).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(cell.dataDir, 'vault.key.next')));
    assertError(await api.post('/api/vault/rotate', { force: true }), 400, { fields: ['force'] });

    const after = await issue({ name: `after.${IDENTITY.domain}`, type: 'server', days: 3 });
    assert.equal(after.status, 201);
    assert.match(await verifyCert(tmp, tempFile(tmp, 'ca.pem', caBefore), after.body.certificate_pem), /: OK/);
    const status = await api.get('/api/status');
    assert.equal(status.body.subsystems.vault.state, 'ok');
    assert.equal(status.body.subsystems.vault.recipient, res.body.recipient);
    assert.equal(status.body.subsystems.vault.generation, 2);
  });

  it('audits every vault write with its target, and the audit log holds no secret', async () => {
    const entries = (await api.get('/api/audit?limit=1000')).body.entries as Array<{
      action: string;
      target_type: string;
      target_id: string;
      result: string;
      details: unknown;
    }>;
    const find = (action: string, result = 'ok') => entries.filter((e) => e.action === action && e.result === result);
    const issued = find('vault.cert.issue');
    assert.ok(issued.length >= 5, JSON.stringify(issued));
    assert.ok(issued.every((e) => e.target_type === 'certificate' && /^[0-9a-f]{32}$/.test(e.target_id)));
    assert.ok(find('vault.cert.issue', 'error').length >= 1, 'refused issues are recorded too');
    assert.equal(find('vault.cert.revoke')[0]?.target_type, 'certificate');
    assert.equal(find('vault.cert.revoke', 'error').length >= 2, true);
    assert.equal(find('vault.trust_key.add')[0]?.target_type, 'trust_key');
    assert.deepEqual(
      find('vault.trust_key.delete').map((e) => e.target_id),
      ['ed'],
    );
    assert.equal(find('vault.rotate').length, 1);
    assert.ok(find('vault.rotate', 'denied').length >= 1, "the peer's attempt is recorded as denied");
    assert.equal((await api.get('/api/audit/verify')).body.valid, true);
  });

  it('no response, log line or database byte carries a stored secret, except the one-time issue responses', async () => {
    assert.ok(handedOut.length >= 5);
    const identity = readIdentity(cell.dataDir);
    const pieces = handedOut.flatMap(pemPieces);
    // Fetch everything readable once more, including the full audit export.
    for (const path of [
      '/api/vault/certs',
      '/api/vault/trust-keys',
      '/api/vault/ca.crt',
      '/api/vault/crl',
      '/api/status',
      '/api/config',
      '/api/audit?limit=1000',
      '/api/audit/export?format=json',
      '/api/audit/export?format=csv',
    ]) {
      assert.equal((await api.get(path)).status, 200, path);
    }
    assert.ok(api.seen.length > 40);
    for (const { method, path, res } of api.seen) {
      assert.ok(!res.text.includes('AGE-SECRET-KEY'), `${method} ${path} carries an age identity`);
      if (issueResponses.has(res)) continue;
      for (const piece of pieces) assert.ok(!res.text.includes(piece), `${method} ${path} carries a private key`);
    }
    const log = cell.output();
    assert.ok(!log.includes(identity) && !log.includes('AGE-SECRET-KEY'), 'the log holds no identity');
    for (const piece of pieces) assert.ok(!log.includes(piece), 'the log holds no private key');

    // The database files: the keys are only there as age ciphertext; the public certificates are in the clear.
    const files = readdirSync(cell.dataDir).filter((f) => f.startsWith('cell.db'));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(cell.dataDir, f))));
    const certs = (await api.get('/api/vault/certs')).body.certificates as Array<{ serial: string }>;
    const somePem = (await api.get(`/api/vault/certs/${certs[0]!.serial}`)).body.certificate_pem as string;
    assert.ok(
      bytes.includes(Buffer.from(pemPieces(somePem)[0]!)),
      'control: the scan finds a certificate stored in the clear',
    );
    for (const piece of pieces)
      assert.ok(!bytes.includes(Buffer.from(piece)), 'a private key is in the database in the clear');
    assert.ok(!bytes.includes(Buffer.from('AGE-SECRET-KEY')), 'no identity (current or retired) in the clear');
  });
});
