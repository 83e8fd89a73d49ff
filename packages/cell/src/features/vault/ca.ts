import type * as X509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import { readCellSettings } from '../config/service.js';
import type { Vault } from './vault.js';
import {
  findCaCertificatePem,
  findCertificate,
  insertCa,
  insertCertificate,
  listRevoked,
  markRevoked,
  type CertificateRow,
} from './queries.js';

// The X.509 stack (with reflect-metadata and asn1 schemas) is ~10 MB of memory: loaded on first
// use of the CA, not at start-up of every cell.
let x509: typeof X509;
let asn1: {
  CRLNumber: typeof import('@peculiar/asn1-x509').CRLNumber;
  AsnConvert: typeof import('@peculiar/asn1-schema').AsnConvert;
};
async function loadX509(): Promise<void> {
  if (x509) return;
  await import('reflect-metadata'); // @peculiar/x509's dependency injection needs it loaded first
  const [lib, asnX509, asnSchema] = await Promise.all([
    import('@peculiar/x509'),
    import('@peculiar/asn1-x509'),
    import('@peculiar/asn1-schema'),
  ]);
  lib.cryptoProvider.set(webcrypto as unknown as Crypto);
  asn1 = { CRLNumber: asnX509.CRLNumber, AsnConvert: asnSchema.AsnConvert };
  x509 = lib;
}

/** ECDSA P-256 with SHA-256 for the CA and every certificate it issues. */
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
const CRL_DAYS = 7;
/** Tolerance for clocks of the machines that will check a fresh certificate. */
const BACKDATE_MS = 5 * 60_000;

export const CA_KEY_SECRET = 'ca/key';
export const certificateKeySecret = (serial: string): string => `certs/${serial}/key`;

export type CertificateType = 'server' | 'client';

/** RFC 5280 CRLReason codes (the values of @peculiar/x509's X509CrlReason). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  key_compromise: 1,
  affiliation_changed: 3,
  superseded: 4,
  cessation_of_operation: 5,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export interface IssueRequest {
  name: string;
  type: CertificateType;
  days: number;
  /** More DNS names for the subjectAltName (e.g. the wildcard `*.<domain>`); `name` is always the first. */
  altNames?: string[];
}

export interface IssuedCertificate {
  row: CertificateRow;
  certificatePem: string;
  /** PKCS #8 PEM: handed out once by the issuing request and kept in the vault. */
  privateKeyPem: string;
}

interface LoadedCa {
  certificate: X509.X509Certificate;
  pem: string;
  keyId: string;
  signingKey: CryptoKey;
}

/** A positive 127-bit serial in fixed-width lowercase hex (first byte 0x40-0x7f: positive and minimally encoded). */
export function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/** Serials as the API and the database spell them: lowercase hex. */
export function normalizeSerial(text: string): string | undefined {
  const s = text.trim().toLowerCase().replace(/:/g, '');
  return /^[0-9a-f]{1,64}$/.test(s) ? s : undefined;
}

/** Why `name` is not a name this cell may certify, or undefined when it is fine. */
export function nameProblem(name: string, domain: string): string | undefined {
  const bare = name.startsWith('*.') ? name.slice(2) : name;
  if (bare !== domain && !bare.endsWith(`.${domain}`))
    return `must be ${domain} or a name under it (like www.${domain})`;
  return undefined;
}

const pem = (der: ArrayBuffer | Uint8Array, label: string): string =>
  x509.PemConverter.encode(der as BufferSource, label);
const iso = (d: Date): string => d.toISOString();

/**
 * The cell's own certificate authority. Its certificate and the index of what it issued are in
 * `vault_ca` / `vault_certificates`; its private key is the vault secret `ca/key`. The CA is created
 * the first time it is needed, in its own transaction (call `ready()` outside any transaction).
 */
export class CertificateAuthority {
  private loading: Promise<LoadedCa> | undefined;

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly logger: Logger,
  ) {}

  ready(): Promise<LoadedCa> {
    this.loading ??= this.load().catch((err: unknown) => {
      this.loading = undefined; // let the next request try again
      throw err;
    });
    return this.loading;
  }

  private async load(): Promise<LoadedCa> {
    await loadX509();
    let row = await findCaCertificatePem(this.db);
    if (!row) {
      await this.create();
      row = await findCaCertificatePem(this.db);
      if (!row) throw new Error('the CA certificate was not stored');
    }
    const keyPem = await this.vault.get(CA_KEY_SECRET);
    if (!keyPem) throw new Error(`the CA key (vault secret ${CA_KEY_SECRET}) is missing`);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      x509.PemConverter.decodeFirst(keyPem),
      KEY_ALGORITHM,
      false,
      ['sign'],
    );
    const certificate = new x509.X509Certificate(row.certificate_pem);
    const keyId = certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    if (!keyId) throw new Error('the CA certificate has no subject key identifier');
    return { certificate, pem: row.certificate_pem, keyId, signingKey };
  }

  private async create(): Promise<void> {
    await loadX509();
    const { identity } = await readCellSettings(this.db);
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const serial = newSerial();
    // A short random tag tells apart the CAs of cells that share a name, in a trust store.
    const subject = `CN=${identity.cell_name} cell CA ${serial.slice(0, 8)}, O=Personal Internet Cell`;
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial,
      name: subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + CA_DAYS * DAY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const keyPem = pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    await this.db.transaction().execute(async (trx) => {
      if (await findCaCertificatePem(trx)) return;
      await this.vault.put(CA_KEY_SECRET, keyPem, trx);
      await insertCa(trx, {
        serial,
        subject: certificate.subject,
        certificate_pem: certificate.toString('pem'),
        not_before: iso(certificate.notBefore),
        not_after: iso(certificate.notAfter),
        created_at: nowIso(),
      });
    });
    this.logger.info('vault: created the cell certificate authority', { subject: certificate.subject, serial });
  }

  async certificatePem(): Promise<string> {
    return (await this.ready()).pem;
  }

  /**
   * Makes a key pair and a certificate for `name`, signed by the CA. Pure crypto, no database
   * writes: call it before the transaction, then `record` the result inside it.
   */
  async issue(request: IssueRequest, now = new Date()): Promise<IssuedCertificate> {
    await loadX509();
    const ca = await this.ready();
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const serial = newSerial();
    const notBefore = new Date(now.getTime() - BACKDATE_MS);
    const sans = [request.name, ...(request.altNames ?? []).filter((n) => n !== request.name)];
    // Nothing the CA signs may outlive the CA.
    const notAfter = new Date(Math.min(now.getTime() + request.days * DAY_MS, ca.certificate.notAfter.getTime()));
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [request.name] }],
      issuer: ca.certificate.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          request.type === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension(sans.map((value) => ({ type: 'dns' as const, value }))),
        new x509.AuthorityKeyIdentifierExtension(ca.keyId),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const certificatePem = certificate.toString('pem');
    return {
      certificatePem,
      privateKeyPem: pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'),
      row: {
        serial,
        name: request.name,
        type: request.type,
        subject: certificate.subject,
        sans: JSON.stringify(sans),
        not_before: iso(certificate.notBefore),
        not_after: iso(certificate.notAfter),
        certificate_pem: certificatePem,
        key_secret: certificateKeySecret(serial),
        revoked_at: null,
        revocation_reason: null,
        created_at: iso(now),
      },
    };
  }

  /** Stores an issued certificate and its key (in the vault), inside the caller's transaction. */
  async record(trx: Transaction<Database>, issued: IssuedCertificate): Promise<void> {
    await insertCertificate(trx, issued.row);
    await this.vault.put(issued.row.key_secret!, issued.privateKeyPem, trx);
  }

  /**
   * Marks a certificate revoked (404 unknown, 409 already revoked) and deletes its private key from
   * the vault: a revoked certificate's key has no further use.
   */
  async revoke(
    trx: Transaction<Database>,
    serial: string,
    reason: RevocationReason,
    now = new Date(),
  ): Promise<CertificateRow> {
    const row = await findCertificate(trx, serial);
    if (!row) throw errors.notFound(`no certificate with serial ${serial}`);
    if (row.revoked_at) throw errors.conflict(`certificate ${serial} was already revoked at ${row.revoked_at}`);
    if (row.key_secret) await this.vault.delete(row.key_secret, trx);
    await markRevoked(trx, row.serial, reason, iso(now));
    return { ...row, revoked_at: iso(now), revocation_reason: reason, key_secret: null };
  }

  /** A CRL (PEM, label "X509 CRL" as OpenSSL expects) of every revoked certificate, signed now. */
  async crl(now = new Date()): Promise<string> {
    await loadX509();
    const ca = await this.ready();
    const revoked = await listRevoked(this.db);
    const crl = await x509.X509CrlGenerator.create({
      issuer: ca.certificate.subjectName,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + CRL_DAYS * DAY_MS),
      signingKey: ca.signingKey,
      signingAlgorithm: ALGORITHM,
      entries: revoked.map((r) => ({
        serialNumber: r.serial,
        revocationDate: new Date(r.revoked_at!),
        reason:
          REVOCATION_REASONS[(r.revocation_reason ?? 'unspecified') as RevocationReason] ??
          REVOCATION_REASONS.unspecified,
      })),
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(ca.keyId),
        // CRL numbers must increase: seconds since the epoch do, and need no stored counter.
        new x509.Extension(
          '2.5.29.20',
          false,
          asn1.AsnConvert.serialize(new asn1.CRLNumber(Math.floor(now.getTime() / 1000))),
        ),
      ],
    });
    return pem(crl.rawData, 'X509 CRL');
  }
}
