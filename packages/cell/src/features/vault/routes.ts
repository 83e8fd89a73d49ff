import Router from '@koa/router';
import type { Context } from 'koa';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateBody, type InputContext } from '../../http/validate.js';
import { prepare } from '../../http/prepare.js';
import { transactional } from '../../http/transaction.js';
import { audited } from '../../http/audit.js';
import { errors } from '../../http/errors.js';
import { readCellSettings } from '../config/service.js';
import { CertificateAuthority, nameProblem, normalizeSerial } from './ca.js';
import { findCertificate, listCertificates } from './queries.js';
import { addTrustKey, deleteTrustKey, listTrustKeys, parseTrustKey, type ParsedTrustKey } from './trust-keys.js';
import {
  DEFAULT_CERTIFICATE_DAYS,
  IssueCertificateBody,
  RevokeBody,
  RotateBody,
  TrustKeyBody,
  checkIssueCertificate,
  checkTrustKey,
} from './schema.js';
import { presentCertificate, presentTrustKey } from './presenter.js';

const PEM_TYPE = 'application/x-pem-file';

/** The serial from the path, or 404: a malformed serial names no certificate either. */
function serialParam(ctx: Context): string {
  const serial = normalizeSerial(String(ctx.params['serial'] ?? ''));
  if (!serial) throw errors.notFound('no certificate with that serial');
  return serial;
}

export function vaultRoutes(deps: CellDeps): Router {
  const { db, vault, logger } = deps;
  const ca = new CertificateAuthority(db, vault, logger);
  const router = new Router({ prefix: '/api/vault' });

  router.get('/age-public-key', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, recipient: vault.recipient };
  });

  // Not `transactional`: the rotation owns its transaction, with key-file steps before and after it
  // (see Vault.rotate). The audit entry still joins that transaction through `inTransaction`.
  router.post(
    'vault.rotate',
    '/rotate',
    requireRole('admin'),
    audited('vault', () => 'identity'),
    validateBody(RotateBody),
    async (ctx) => {
      const result = await vault.rotate({
        inTransaction: (trx, outcome) => {
          if (!ctx.audit) return;
          ctx.audit.note({
            recipient: outcome.recipient,
            previous_recipient: outcome.previous_recipient,
            secrets: outcome.secrets,
          });
          ctx.audit.writeIn(trx);
        },
      });
      ctx.body = { ok: true, ...result };
    },
  );

  router.get('/ca.crt', requireRole('admin'), async (ctx) => {
    const pem = await ca.certificatePem();
    ctx.type = PEM_TYPE;
    ctx.set('Content-Disposition', 'attachment; filename="cell-ca.crt"');
    ctx.body = pem;
  });

  router.get('/crl', requireRole('admin'), async (ctx) => {
    const crl = await ca.crl();
    ctx.type = PEM_TYPE;
    ctx.set('Content-Disposition', 'attachment; filename="cell-ca.crl"');
    ctx.body = crl;
  });

  router.get('/certs', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, certificates: (await listCertificates(db)).map(presentCertificate) };
  });

  router.get('/certs/:serial', requireRole('admin'), async (ctx) => {
    const row = await findCertificate(db, serialParam(ctx));
    if (!row) throw errors.notFound('no certificate with that serial');
    ctx.body = { ok: true, certificate: presentCertificate(row), certificate_pem: row.certificate_pem };
  });

  router.post(
    'vault.cert.issue',
    '/certs',
    requireRole('admin'),
    audited('certificate'),
    validateBody(IssueCertificateBody, checkIssueCertificate),
    // Key generation and signing happen before the transaction, which then only stores.
    prepare(async (ctx: InputContext<IssueCertificateBody>) => {
      const input = ctx.input;
      const { domain } = (await readCellSettings(db)).identity;
      const problem = nameProblem(input.name, domain);
      if (problem) throw errors.validation({ name: problem });
      const days = input.days ?? DEFAULT_CERTIFICATE_DAYS;
      const issued = await ca.issue({ name: input.name, type: input.type, days });
      return { issued, caPem: await ca.certificatePem() };
    }),
    transactional(db),
    async (ctx) => {
      const { issued, caPem } = ctx.prepared;
      await ca.record(ctx.trx, issued);
      ctx.audit.target(issued.row.serial);
      ctx.audit.note({ name: issued.row.name, type: issued.row.type, not_after: issued.row.not_after });
      ctx.status = 201;
      // The one response that carries the private key: it is shown once, here.
      ctx.body = {
        ok: true,
        certificate: presentCertificate(issued.row),
        certificate_pem: issued.certificatePem,
        private_key_pem: issued.privateKeyPem,
        ca_certificate_pem: caPem,
      };
    },
  );

  router.post(
    'vault.cert.revoke',
    '/certs/:serial/revoke',
    requireRole('admin'),
    audited('certificate', (ctx) => normalizeSerial(String(ctx.params['serial'] ?? ''))),
    validateBody(RevokeBody),
    transactional(db),
    async (ctx) => {
      const { reason = 'unspecified' } = ctx.input;
      const row = await ca.revoke(ctx.trx, serialParam(ctx), reason);
      ctx.audit.note({ name: row.name, reason });
      ctx.body = { ok: true, certificate: presentCertificate(row) };
    },
  );

  router.get('/trust-keys', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, trust_keys: (await listTrustKeys(db)).map(presentTrustKey) };
  });

  router.post(
    'vault.trust_key.add',
    '/trust-keys',
    requireRole('admin'),
    audited('trust_key'),
    validateBody(TrustKeyBody, checkTrustKey),
    transactional(db),
    async (ctx) => {
      const input = ctx.input;
      const parsed = parseTrustKey(input.public_key) as ParsedTrustKey; // checkTrustKey refused anything else
      ctx.audit.target(input.name);
      ctx.audit.note({ key_type: parsed.keyType, fingerprint: parsed.fingerprint });
      const row = await addTrustKey(ctx.trx, input.name, parsed);
      ctx.status = 201;
      ctx.body = { ok: true, trust_key: presentTrustKey(row) };
    },
  );

  router.delete(
    'vault.trust_key.delete',
    '/trust-keys/:name',
    requireRole('admin'),
    audited('trust_key', (ctx) => String(ctx.params['name'] ?? '')),
    transactional(db),
    async (ctx) => {
      const row = await deleteTrustKey(ctx.trx, String(ctx.params['name']));
      ctx.audit.note({ fingerprint: row.fingerprint });
      ctx.body = { ok: true, deleted: row.name };
    },
  );

  return router;
}
