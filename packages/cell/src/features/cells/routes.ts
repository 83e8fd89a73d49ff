import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { requireRole } from '../../http/guard.js';
import { transactional } from '../../http/transaction.js';
import { validateBody } from '../../http/validate.js';
import { presentLink, presentRemotePeer } from './presenter.js';
import { CodeBody, CreateInviteBody, PolicyBody } from './schema.js';

/** /api/cells/*: invites, accept, complete, links, their peers and policies (admin). Peer-sync has its own listener. */
export function cellRoutes(deps: CellDeps): Router {
  const { db, cells } = deps;
  const router = new Router({ prefix: '/api/cells' });
  const byName = (ctx: Context) => (ctx.params as { name?: string }).name;
  /** The cell's key pair exists before a transaction opens (creating it writes the vault). */
  const withKey = async (_ctx: Context, next: Next) => {
    await cells.ensureKey();
    await next();
  };
  const linksChangedAfterCommit = (ctx: Context) => ctx.afterCommit(() => void cells.linksChanged());

  router.get('/', requireRole('admin'), async (ctx) => {
    const links = await cells.list();
    ctx.body = { ok: true, cells: links.map((l) => presentLink(l.link, l)) };
  });

  router.post(
    'cells.invite',
    '/invites',
    requireRole('admin'),
    audited('cell_invite'),
    validateBody(CreateInviteBody),
    withKey,
    transactional(db),
    async (ctx) => {
      const invite = await cells.createInvite(ctx.trx, ctx.input);
      ctx.audit.target(invite.nonce_hash.slice(0, 16));
      ctx.audit.note({ expires_at: invite.expires_at, one_step: ctx.input.one_step === true });
      // a one-step invite opens the link listener until it is used or expires
      if (ctx.input.one_step) ctx.afterCommit(() => void cells.oneStepChanged());
      const qr = await import('../wireguard/qr.js');
      ctx.status = 201;
      ctx.set('Cache-Control', 'no-store');
      // the code (and its nonce) is shown this once; only the nonce's hash is kept
      ctx.body = {
        ok: true,
        code: invite.code,
        qr_svg: await qr.configQrSvg(invite.code),
        expires_at: invite.expires_at,
      };
    },
  );

  router.post(
    'cells.accept',
    '/accept',
    requireRole('admin'),
    audited('cell_link'),
    validateBody(CodeBody),
    withKey,
    transactional(db),
    async (ctx) => {
      const { link, response, deliverTo } = await cells.accept(ctx.trx, ctx.input);
      ctx.audit.target(link.name);
      ctx.audit.note({ subnet: link.subnet, public_key: link.public_key, one_step: deliverTo !== undefined });
      linksChangedAfterCommit(ctx);
      // one-step: this cell hands the response to the inviting cell itself (and A's admin may still paste it)
      if (deliverTo) ctx.afterCommit(() => cells.deliverResponse(link.id, deliverTo, response));
      const qr = await import('../wireguard/qr.js');
      ctx.status = 201;
      ctx.body = {
        ok: true,
        cell: presentLink(link),
        response,
        qr_svg: await qr.configQrSvg(response),
        delivered_to: deliverTo?.url ?? null,
      };
    },
  );

  router.post(
    'cells.complete',
    '/complete',
    requireRole('admin'),
    audited('cell_link'),
    validateBody(CodeBody),
    withKey,
    transactional(db),
    async (ctx) => {
      const link = await cells.complete(ctx.trx, ctx.input);
      ctx.audit.target(link.name);
      ctx.audit.note({ subnet: link.subnet, public_key: link.public_key });
      linksChangedAfterCommit(ctx);
      ctx.status = 201;
      ctx.body = { ok: true, cell: presentLink(link) };
    },
  );

  router.get('/:name', requireRole('admin'), async (ctx) => {
    const all = await cells.list();
    const found = all.find((l) => l.link.name === byName(ctx));
    if (!found) await cells.requireLink(db, byName(ctx)!);
    ctx.body = { ok: true, cell: presentLink(found!.link, found) };
  });

  router.get('/:name/peers', requireRole('admin'), async (ctx) => {
    const { link, peers } = await cells.remotePeers(byName(ctx)!);
    ctx.body = { ok: true, cell: link.name, read_only: true, peers: peers.map(presentRemotePeer) };
  });

  router.put(
    'cells.policy',
    '/:name/policy',
    requireRole('admin'),
    audited('cell_link', byName),
    validateBody(PolicyBody),
    transactional(db),
    async (ctx) => {
      const { policy } = ctx.input;
      ctx.audit.note({ policy });
      const link = await cells.setPolicy(ctx.trx, byName(ctx)!, policy);
      linksChangedAfterCommit(ctx);
      ctx.body = { ok: true, cell: presentLink(link) };
    },
  );

  router.delete('cells.unlink', '/:name', requireRole('admin'), audited('cell_link', byName), async (ctx) => {
    const result = await cells.unlink(byName(ctx)!, (trx, notified) => {
      // the audit entry commits with the unlink
      ctx.audit.note({ notified });
      ctx.audit.writeIn(trx);
    });
    await cells.linksChanged();
    ctx.body = { ok: true, unlinked: byName(ctx), notified: result.notified };
  });

  return router;
}
