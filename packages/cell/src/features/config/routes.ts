import Router from '@koa/router';
import type { CellDeps } from '../../deps.js';
import { requireRole } from '../../http/guard.js';
import { validateBody } from '../../http/validate.js';
import { transactional } from '../../http/transaction.js';
import { audited } from '../../http/audit.js';
import { ConfigPatch, checkConfigPatch } from './schema.js';
import { readCellSettings, updateCellSettings } from './service.js';
import { presentConfig } from './presenter.js';

export function configRoutes(deps: CellDeps): Router {
  const { db, config } = deps;
  const router = new Router({ prefix: '/api/config' });

  router.get('/', requireRole('admin'), async (ctx) => {
    ctx.body = { ok: true, config: presentConfig(await readCellSettings(db), config) };
  });

  router.put('config.update', '/', requireRole('admin'), audited('config', () => 'cell'), validateBody(ConfigPatch, checkConfigPatch), transactional(db), async (ctx) => {
    const patch = ctx.input as ConfigPatch;
    ctx.audit!.details = { changed: Object.entries(patch).flatMap(([section, fields]) => Object.keys(fields ?? {}).map((f) => `${section}.${f}`)) };
    const settings = await updateCellSettings(ctx.trx, patch);
    // a new port or subnet needs the interface brought up again with them
    if (patch.network?.wireguard_port !== undefined || patch.network?.subnet !== undefined) ctx.afterCommit(() => deps.peerNetwork.restart());
    ctx.body = { ok: true, config: presentConfig(settings, config) };
  });

  return router;
}
