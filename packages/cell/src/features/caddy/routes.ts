import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { audited } from '../../http/audit.js';
import { errors } from '../../http/errors.js';
import { validateBody } from '../../http/validate.js';
import { RenewBody } from './schema.js';

export function caddyRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/caddy' });
  const { caddy } = deps;

  router.get('/status', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, caddy: caddy.status() };
  });

  router.get('/cert-status', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, certificate: await caddy.certStatus() };
  });

  // Not `transactional`: the new certificate is stored first, loaded into Caddy, then the old one
  // revoked; the audit entry is written on its own once that is done.
  router.post(
    'caddy.cert.renew',
    '/cert-renew',
    requireRole('admin'),
    audited('certificate'),
    validateBody(RenewBody),
    async (ctx) => {
      if (deps.config.reach.tls !== 'internal')
        throw errors.conflict('certificates come from ACME (reach.tls: acme): Caddy renews them itself');
      if (caddy.status().state !== 'ok')
        throw errors.conflict(
          `caddy is not running: ${String(caddy.status()['reason'] ?? caddy.status()['error'] ?? 'unknown')}`,
        );
      const { serial, previous } = await caddy.renew();
      if (ctx.audit) {
        ctx.audit.target(serial);
        ctx.audit.note({ previous: previous ?? null });
      }
      ctx.body = { ok: true, certificate: await caddy.certStatus(), previous_serial: previous ?? null };
    },
  );
  return router;
}
