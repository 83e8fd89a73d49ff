import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateBody } from '../../http/validate.js';
import { transactional } from '../../http/transaction.js';
import { audited } from '../../http/audit.js';
import { ConfigPatch, checkConfigPatch } from './schema.js';
import { readCellSettings, refreshKnownHosts, updateCellSettings } from './service.js';
import { presentConfig } from './presenter.js';
import { errors } from '../../http/errors.js';
import { hostPortOwner } from '../store/queries.js';

export function configRoutes(deps: CellDeps): Router {
  const { db, config } = deps;
  const router = new Router({ prefix: '/api/config' });

  router.get('/', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, config: presentConfig(await readCellSettings(db), config) };
  });

  router.put(
    'config.update',
    '/',
    requireRole('admin'),
    audited('config', () => 'cell'),
    validateBody(ConfigPatch, checkConfigPatch),
    transactional(db),
    async (ctx) => {
      const patch = ctx.input;
      ctx.audit.note({
        changed: Object.entries(patch).flatMap(([section, fields]) =>
          Object.keys(fields ?? {}).map((f) => `${section}.${f}`),
        ),
      });
      // the WireGuard port may not move onto a host port an installed service publishes (and the
      // store refuses a service that publishes the WireGuard port: see reservedPortProblems)
      const port = patch.network?.wireguard_port;
      const owner = port === undefined ? undefined : await hostPortOwner(ctx.trx, port);
      if (owner) {
        const reason = `is published on the host by the installed service ${owner}`;
        throw errors.conflict(`port ${port} ${reason}`, { 'network.wireguard_port': reason });
      }
      const settings = await updateCellSettings(ctx.trx, patch);
      // a new port or subnet needs the interface brought up again with them
      if (patch.network?.wireguard_port !== undefined || patch.network?.subnet !== undefined)
        ctx.afterCommit(() => deps.peerNetwork.restart());
      // a new domain or subnet changes the names the cell answers to
      ctx.afterCommit(() => refreshKnownHosts(deps.db, deps.knownHosts));
      // Caddy and the resolver follow a new domain (a new certificate) or tunnel address.
      if (patch.identity?.domain !== undefined || patch.network?.subnet !== undefined) {
        ctx.afterCommit(async () => {
          const failed = (what: string) => (err: unknown) =>
            deps.logger.error(`${what}: converge after a config change failed`, { error: String(err) });
          await deps.caddy.converge().catch(failed('caddy'));
          await deps.dns.converge().catch(failed('dns'));
        });
      }
      ctx.body = { ok: true, config: presentConfig(settings, config) };
    },
  );

  return router;
}
