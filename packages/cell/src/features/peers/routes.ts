import Router from '@koa/router';
import type { Context } from 'koa';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { errors } from '../../http/errors.js';
import { requireRole } from '../../http/guard.js';
import { prepare } from '../../http/prepare.js';
import { transactional } from '../../http/transaction.js';
import { validateBody, validateQuery, type InputContext } from '../../http/validate.js';
import { generateLoginPassword, hashPassword } from '../../lib/password.js';
import { configFileName, peerClientConfig } from './client-config.js';
import { presentPeer } from './presenter.js';
import {
  BatchBody,
  CreatePeerBody,
  FormatQuery,
  ListPeersQuery,
  TrafficQuery,
  UpdatePeerBody,
  checkBatch,
  checkPeerFields,
  checkPeerUpdate,
} from './schema.js';
import { createPeers, deletePeer, peerTraffic, requirePeer, updatePeer, type CreatedPeer } from './service.js';
import { findPeer, findPeerOfUser, listPeers, peerNamesByKey, type PeerRow } from './queries.js';

/** A new peer's login: the password as given or generated, and the hash to store. */
interface PreparedLogin {
  password: string;
  hash: string;
}

/** scrypt hashes of chosen passwords run at once (libuv's pool has 4 threads). */
const HASHES_IN_FLIGHT = 4;

/**
 * The logins of new peers, before the transaction opens: a password the admin chose takes scrypt
 * (~100 ms each); one the cell generates (≥ 128 bits) takes SHA-256 (lib/password.ts says why).
 */
async function prepareLogins(inputs: CreatePeerBody[], source: string): Promise<PreparedLogin[]> {
  const logins: PreparedLogin[] = new Array(inputs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < inputs.length; i = next++) {
      const chosen = inputs[i]!.password;
      logins[i] =
        chosen === undefined ? generateLoginPassword() : { password: chosen, hash: await hashPassword(chosen, source) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASHES_IN_FLIGHT, inputs.length) }, worker));
  return logins;
}

/** Fields of a PUT that change what the interface holds (the others live only in the client's config). */
const INTERFACE_FIELDS = ['enabled', 'expires_at'] as const;

/** Sends a peer's config as text (optionally a download) or as a QR code (PNG, or SVG). */
export async function sendPeerConfig(
  ctx: InputContext<FormatQuery>,
  deps: CellDeps,
  peer: PeerRow,
  as: 'text' | 'qr',
): Promise<void> {
  const q = ctx.input;
  const text = await peerClientConfig(deps.db, deps.vault, deps.peerNetwork, peer, deps.caddy.enabled);
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
  /** After the commit, puts just these peers on the interface as they now are (or takes them off). */
  const applyAfterCommit = (ctx: Context, keys: string[]) =>
    ctx.afterCommit(() => {
      deps.peerChanges?.changed();
      return peerNetwork.peersChanged(keys);
    });
  /** New peers: their PSKs are known in the clear here, so the apply decrypts nothing. */
  const addAfterCommit = (ctx: Context, created: CreatedPeer[]) =>
    ctx.afterCommit(() => {
      deps.peerChanges?.changed(); // linked cells get the difference
      for (const c of created) peerNetwork.rememberPsk(c.peer.id, c.presharedKey);
      return peerNetwork.peersChanged(created.map((c) => c.peer.public_key));
    });

  /** Hashes the new peers' login passwords before the transaction opens (none: nothing to add). */
  const prepareLoginsOf = <T>(inputs: (ctx: InputContext<T>) => CreatePeerBody[] | undefined) =>
    prepare(async (ctx: InputContext<T>): Promise<PreparedLogin[]> => {
      const list = inputs(ctx);
      return list ? prepareLogins(list, ctx.ip) : [];
    });

  router.get('/', requireRole('admin'), validateQuery(ListPeersQuery, ['limit', 'offset']), async (ctx) => {
    const page = await listPeers(db, ctx.input);
    const live = await peerNetwork.liveByKey();
    ctx.body = { ok: true, ...page, peers: page.peers.map((p) => presentPeer(p, live.get(p.public_key))) };
  });

  router.post(
    'peers.create',
    '/',
    requireRole('admin'),
    audited('peer'),
    validateBody(CreatePeerBody, checkPeerFields),
    prepareLoginsOf((ctx: InputContext<CreatePeerBody>) => [ctx.input]),
    transactional(db),
    async (ctx) => {
      const input = ctx.input;
      ctx.audit.target(input.name);
      const [login] = ctx.prepared;
      const [created] = await createPeers(ctx.trx, vault, [{ input, passwordHash: login!.hash }]);
      const peer = created!.peer;
      ctx.audit.note({ address: peer.address });
      addAfterCommit(ctx, [created!]);
      ctx.status = 201;
      ctx.set('Cache-Control', 'no-store');
      // the login password is shown this once; only its hash is kept
      ctx.body = { ok: true, peer: presentPeer(peer), login: { username: peer.name, password: login!.password } };
    },
  );

  router.post(
    'peers.batch',
    '/batch',
    requireRole('admin'),
    audited('peer'),
    validateBody(BatchBody, checkBatch),
    prepareLoginsOf((ctx: InputContext<BatchBody>) => ctx.input.peers),
    transactional(db),
    async (ctx) => {
      const body = ctx.input;
      const { action } = body;
      if (action === 'add') {
        // all or nothing: one transaction (a taken name or a full subnet rolls back every peer), one apply
        const inputs = body.peers!;
        const logins = ctx.prepared;
        ctx.audit.note({ action, names: inputs.map((p) => p.name) });
        const items = inputs.map((input, i) => ({ input, passwordHash: logins[i]!.hash }));
        const created = await createPeers(ctx.trx, vault, items);
        addAfterCommit(ctx, created);
        ctx.status = 201;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = {
          ok: true,
          action,
          peers: created.map((c) => presentPeer(c.peer)),
          // shown this once, in the order given; only their hashes are kept
          logins: created.map((c, i) => ({ username: c.peer.name, password: logins[i]!.password })),
        };
        return;
      }
      const names = body.names!;
      ctx.audit.note({ action, names });
      const peers: PeerRow[] = [];
      const missing = [];
      for (const name of names) {
        const peer = await findPeer(ctx.trx, name);
        if (peer) peers.push(peer);
        else missing.push(name);
      }
      if (missing.length) throw errors.notFound(`no such peers: ${missing.join(', ')}; nothing was changed`);
      for (const name of names) {
        if (action === 'delete') {
          const gone = await deletePeer(ctx.trx, vault, name, deps.peerDeletionHooks);
          ctx.afterCommit(() => peerNetwork.forget(gone.id));
        } else {
          await updatePeer(ctx.trx, name, { enabled: action === 'enable' });
        }
      }
      applyAfterCommit(
        ctx,
        peers.map((p) => p.public_key),
      );
      ctx.body = { ok: true, action, names };
    },
  );

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
      const patch = ctx.input;
      ctx.audit.note({ changed: Object.keys(patch) });
      const peer = await updatePeer(ctx.trx, byName(ctx)!, patch);
      // a description, DNS, routes, group or tags: nothing on the interface changes
      if (INTERFACE_FIELDS.some((f) => patch[f] !== undefined)) applyAfterCommit(ctx, [peer.public_key]);
      ctx.body = { ok: true, peer: presentPeer(peer) };
    },
  );

  router.delete(
    'peers.delete',
    '/:name',
    requireRole('admin'),
    audited('peer', byName),
    transactional(db),
    async (ctx) => {
      const peer = await deletePeer(ctx.trx, vault, byName(ctx)!, deps.peerDeletionHooks);
      ctx.afterCommit(() => peerNetwork.forget(peer.id));
      applyAfterCommit(ctx, [peer.public_key]);
      ctx.body = { ok: true, deleted: peer.name };
    },
  );

  router.get('/:name/config', requireRole('admin'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await requirePeer(db, byName(ctx)!), 'text');
  });

  router.get('/:name/qr', requireRole('admin'), validateQuery(FormatQuery), async (ctx) => {
    await sendPeerConfig(ctx, deps, await requirePeer(db, byName(ctx)!), 'qr');
  });

  router.get('/:name/traffic', requireRole('admin'), validateQuery(TrafficQuery), async (ctx) => {
    const peer = await requirePeer(db, byName(ctx)!);
    const { period = '24h' } = ctx.input;
    ctx.body = { ok: true, peer: peer.name, ...(await peerTraffic(db, peer.id, period)) };
  });

  return router;
}

/** The peer's own portal: a peer sees only itself. */
export function peerSelfRoutes(deps: CellDeps): Router {
  const router = new Router({ prefix: '/api/peer' });
  const own = async (ctx: Context) => {
    const peer = await findPeerOfUser(deps.db, ctx.state.user!.id);
    if (!peer) throw errors.notFound('this login has no peer');
    return peer;
  };

  router.get('/me', requireRole('peer'), async (ctx) => {
    const peer = await own(ctx);
    const live = await deps.peerNetwork.liveByKey();
    ctx.body = { ok: true, peer: presentPeer(peer, live.get(peer.public_key)) };
  });
  // The CA that signs https://<domain> and the services' names: a device installs it once.
  router.get('/ca.crt', requireRole('peer'), async (ctx) => {
    await own(ctx);
    ctx.type = 'application/x-pem-file';
    ctx.set('Content-Disposition', 'attachment; filename="cell-ca.crt"');
    ctx.body = await deps.caddy.certificate.ca.certificatePem();
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
    const names = await peerNamesByKey(deps.db);
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
