import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import { silentLogger } from '../../lib/logger.js';
import { writeIdentity } from '../config/service.js';
import { findCertificate } from '../vault/queries.js';
import { openVault, type Vault } from '../vault/vault.js';
import { CellCertificate, RENEW_BEFORE_DAYS, daysLeft } from './certificate.js';

const DAY = 86_400_000;

describe("the certificate Caddy serves (the cell CA's, for <domain> and *.<domain>)", () => {
  let t: TempDatabase;
  let vault: Vault;
  let cert: CellCertificate;

  before(async () => {
    t = await openTempDatabase('pic-caddy-cert-');
    await writeIdentity(t.database.db, { cell_name: 'home', domain: 'home.example.org' });
    vault = await openVault({ dataDir: t.dir, db: t.database.db, logger: silentLogger });
    cert = new CellCertificate(t.database.db, vault, silentLogger);
  });
  after(async () => t.remove());

  it('issues one certificate for the domain and its wildcard, signed by the CA, key in the vault', async () => {
    const served = await cert.ensure('home.example.org');
    const x = new X509Certificate(served.row.certificate_pem);
    assert.equal(x.subjectAltName, 'DNS:home.example.org, DNS:*.home.example.org');
    assert.ok(x.checkIssued(new X509Certificate(await cert.ca.certificatePem())));
    assert.ok(x.checkHost('dav.home.example.org'), 'the wildcard covers a service subdomain');
    assert.equal(daysLeft(served.row), 89);
    assert.equal(await vault.get(served.row.key_secret!), served.keyPem);
    assert.equal((await cert.ensure('home.example.org')).row.serial, served.row.serial, 'kept while it is fresh');
  });

  it(`renews once fewer than ${RENEW_BEFORE_DAYS} days are left, and retires the old one`, async () => {
    const first = await cert.ensure('home.example.org');
    const later = new Date(Date.now() + 58 * DAY);
    assert.equal((await cert.ensure('home.example.org', later)).row.serial, first.row.serial, '32 days left: kept');
    const due = new Date(Date.now() + 61 * DAY);
    const renewed = await cert.ensure('home.example.org', due);
    assert.notEqual(renewed.row.serial, first.row.serial, 'under 30 days left: renewed');
    await cert.retire(first.row.serial);
    const old = await findCertificate(t.database.db, first.row.serial);
    assert.equal(old?.revocation_reason, 'superseded');
    assert.equal(await vault.get(first.row.key_secret!), undefined);
    assert.equal((await cert.current())?.row.serial, renewed.row.serial);
  });

  it('issues a new one when the domain changes', async () => {
    const before = await cert.current();
    const moved = await cert.ensure('cell.example.net');
    assert.notEqual(moved.row.serial, before?.row.serial);
    assert.deepEqual(JSON.parse(moved.row.sans), ['cell.example.net', '*.cell.example.net']);
  });
});
