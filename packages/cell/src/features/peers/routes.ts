import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { errors } from '../../http/errors.js';
import { requireRole } from '../../http/guard.js';
import { transactional } from '../../http/transaction.js';
import { validateBody, validateQuery } from '../../http/validate.js';
import { hashPassword } from '../../lib/password.js';
import { generatePassword } from '../../lib/tokens.js';
import { configFileName, peerClientConfig } from './client-config.js';
import { presentPeer } from './presenter.js';
import {
  BatchBody, CreatePeerBody, FormatQuery, ListPeersQuery, TrafficQuery, UpdatePeerBody, checkPeerFields, checkPeerUpdate,
} from './schema.js';
import { createPeer, deletePeer, findPeer, listPeers, peerTraffic, requirePeer, updatePeer, type PeerRow } from './service.js';

/** Sends a peer's config as text (optionally a download) or as a QR code (PNG, or SVG). */
export async function sendPeerConfig(ctx: Context, deps: CellDeps, peer: PeerRow, as: 'text' | 'qr'): Promise<void> {
  const q = ctx.input as FormatQuery;
  const text = await peerClientConfig(deps.db, deps.vault, deps.peerNetwork, peer);
  ctx.set('Cache-Control', 'no-store');
  if (as === 'text') {
    ctx.type = 'text/plain; charset=utf-8';
    if (q.download === '1' || q.download === 'true') ctx.attachment(configFileName(peer.name));
    ctx.body = text;
    return;
  }
  // the QR encoder is loaded on first use: most cells render a handful of codes in their life
  const qr = await import('../wireguard/qr.js');
  if (q.format === 'svg') {
    ctx.type = 'image/svg+xml';
    ctx.body = await qr.configQrSvg(text);
  } else {
    ctx.type = 'image/png';
    ctx.body = await qr.configQrPng(text);
  }
}

export function peerRoutes(deps: CellDeps): Router {
  const { db, vault, peerNetwork } = deps;
  const router = new Router({ prefix: '/api/peers' });
  const byName = (ctx: Context) => (ctx.params as { name?: string }).name;
  const syncAfterCommit = (ctx: Context) => ctx.afterCommit(() => peerNetwork.sync());

  /** Hashes the peer's login password before the transaction opens (scrypt takes ~100 ms). */
  const preparePassword = async (ctx: Context, next: Next) => {
    const input = ctx.input as CreatePeerBody;
    const password = input.password ?? generatePassword();
    ctx.state['peerPassword'] = password;
    ctx.state['peerPasswordHash'] = await hashPassword(password);
    await next();
  };

  router.get('/', requireRole('admin'), validateQuery(ListPeersQuery, ['limit', 'offset']), async (ctx) => {
    const page = await listPeers(db, ctx.input as ListPeersQuery);
    const live = await peerNetwork.liveByKey();
    ctx.body = { ok: true, ...page, peers: page.peers.map((p) => presentPeer(p, live.get(p.public_key))) };
  });

  router.post(
    'peers.create',
    '/',
    requireRole('admin'),
    audited('peer'),
    validateBody(CreatePeerBody, checkPeerFields),
    preparePassword,
    transactional(db),
    async (ctx) => {
      const input = ctx.input as CreatePeerBody;
      ctx.audit!.targetId = input.name;
      const peer = await createPeer(ctx.trx, vault, input, ctx.state['peerPasswordHash'] as string);
      ctx.audit!.details = { address: peer.address };
      syncAfterCommit(ctx);
      ctx.status = 201;
      ctx.set('Cache-Control', 'no-store');
      // the login password is shown this once; only its hash is kept
      ctx.body = { ok: true, peer: presentPeer(peer), login: { username: peer.name, password: ctx.state['peerPassword'] } };
    },
  );

  router.post('peers.batch', '/batch', requireRole('admin'), audited('peer'), validateBody(BatchBody), transactional(db), async (ctx) => {
    const { action, names } = ctx.input as BatchBody;
    ctx.audit!.details = { action, names };
    const missing = [];
    for (const name of names) if (!(await findPeer(ctx.trx, name))) missing.push(name);
    if (missing.length) throw errors.notFound(`no such peers: ${missing.join(', ')}; nothing was changed`);
    for (const name of names) {
      if (action === 'delete') peerNetwork.forget((await deletePeer(ctx.trx, vault, name, deps.peerDeletionHooks)).id);
      else await updatePeer(ctx.trx, name, { enabled: action === 'enable' });
    }
    syncAfterCommit(ctx);
    ctx.body = { ok: true, action, names };
  });

  router.get('/:name', requireRole('admin'), async (ctx) => {
    const peer = await requirePeer(db, byName(ctx)!);
    const live = await peerNetwork.liveByKey();
    ctx.body = { ok: true, peer: presentPeer(peer, live.get(peer.public_key)) };
  });

  router.put(
    'peers.update',
    '/:name',
    requireRole('admin'),
    audited('peer', byName),
    validateBody(UpdatePeerBody, checkPeerUpdate),
    transactional(db),
    async (ctx) => {
      const patch = ctx.input as UpdatePeerBody;
      ctx.audit!.details = { changed: Object.keys(patch) };
      const peer = await updatePeer(ctx.trx, byName(ctx)!, patch);
      syncAfterCommit(ctx);
      ctx.body = { ok: true, peer: presentPeer(peer) };
    },
  );

  router.delete('peers.delete', '/:name', requireRole('admin'), audited('peer', byName), transactional(db), async (ctx) => {
    const peer = await deletePeer(ctx.trx, vault, byName(ctx)!, deps.peerDeletionHooks);
    ctx.afterCommit(() => peerNetwork.forget(peer.id));
    syncAfterCommit(ctx);
    ctx.body = { ok: true, deleted: peer.name };
  });

  router.get('/:name/config', requireRole('admin'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await requirePeer(db, byName(ctx)!), 'text');
  });

  router.get('/:name/qr', requireRole('admin'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await requirePeer(db, byName(ctx)!), 'qr');
  });

  router.get('/:name/traffic', requireRole('admin'), validateQuery(TrafficQuery), async (ctx) => {
    const peer = await requirePeer(db, byName(ctx)!);
    const { period = '24h' } = ctx.input as TrafficQuery;
    ctx.body = { ok: true, peer: peer.name, ...(await peerTraffic(db, peer.id, period)) };
  });

  return router;
}

/** The peer's own portal: a peer sees only itself. */
export function peerSelfRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/peer' });
  const own = async (ctx: Context) => {
    const peer = await deps.db.selectFrom('peers').select('name').where('user_id', '=', ctx.state.user!.id).executeTakeFirst();
    if (!peer) throw errors.notFound('this login has no peer');
    return requirePeer(deps.db, peer.name);
  };

  router.get('/me', requireRole('peer'), async (ctx) => {
    const peer = await own(ctx);
    const live = await deps.peerNetwork.liveByKey();
    ctx.body = { ok: true, peer: presentPeer(peer, live.get(peer.public_key)) };
  });
  router.get('/config', requireRole('peer'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await own(ctx), 'text');
  });
  router.get('/qr', requireRole('peer'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await own(ctx), 'qr');
  });
  return router;
}

export function wireguardRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/wireguard' });
  router.get('/status', requireRole('admin'), async (ctx) => {
    const status = await deps.peerNetwork.status();
    const names = new Map(
      (await deps.db.selectFrom('peers').select(['name', 'public_key']).execute()).map((p) => [p.public_key, p.name]),
    );
    ctx.body = {
      ok: true,
      interface: status.interface,
      running: status.running,
      reason: status.reason,
      listen_port: 'listenPort' in status ? status.listenPort : null,
      public_key: status.publicKey,
      address: 'address' in status ? status.address : null,
      peers: status.peers.map((p) => ({
        name: names.get(p.publicKey) ?? null,
        public_key: p.publicKey,
        endpoint: p.endpoint,
        latest_handshake: p.latestHandshake?.toISOString() ?? null,
        online: p.latestHandshake !== null && Date.now() - p.latestHandshake.getTime() < 180_000,
        rx_bytes: p.rxBytes,
        tx_bytes: p.txBytes,
      })),
    };
  });
  return router;
}
