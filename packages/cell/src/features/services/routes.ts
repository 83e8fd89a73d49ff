import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { RouteSpec, ServiceManifest } from '@pic/manifest';
import type { CellDeps } from '../../deps.js';
import { audited } from '../../http/audit.js';
import { errors, HttpError } from '../../http/errors.js';
import { requireRole } from '../../http/guard.js';
import { prepare, type PreparedContext } from '../../http/prepare.js';
import { transactional } from '../../http/transaction.js';
import { validateBody, type InputContext, type Step } from '../../http/validate.js';
import { readCellSettings } from '../config/service.js';
import { requirePeer } from '../peers/service.js';
import { findPeerOfUser } from '../peers/queries.js';
import { requireEngine } from '../store/engine.js';
import { listInstallations, requireInstalled, type Installation } from '../store/queries.js';
import { SERVICE_ID } from '../store/schema.js';
import { serviceSecrets } from '../store/specs.js';
import { execRouteArgv, runExecRoute, ServiceActionError } from './actions.js';
import { proxyHandler } from './proxy.js';
import { restartService, serviceStatus } from './status.js';
import { checkCreateAccount, CreateAccountBody } from './schema.js';

/** The service id from the path (`:id`), or 404 for one that cannot be a service id. */
function idParam(ctx: Context): string {
  const id = String(ctx.params['id'] ?? '').toLowerCase();
  if (!SERVICE_ID.test(id)) throw errors.notFound(`no service "${id}"`);
  return id;
}

/**
 * The account endpoints of a service, shared by /api/services/catalog/<id>/accounts… and the
 * `accounts.*` handlers a manifest mounts under /api/<id>/…. `idOf` says which service.
 */
function accountHandlers(
  deps: CellDeps,
  idOf: (ctx: Context) => string,
  names: { create: string; delete: string; rotate: string },
) {
  const { db, store, audit } = deps;
  const accounts = deps.services.accounts;

  const list: Middleware = async (ctx) => {
    const inst = await requireInstalled(db, idOf(ctx));
    ctx.body = { ok: true, service: inst.id, ...(await accounts.list(inst)) };
  };

  // Before the transaction: the service must be installed, have accounts, and its engine answer.
  const loadInstalled = prepare(async (ctx: Context) => {
    const inst = await requireInstalled(db, idOf(ctx));
    if (!inst.manifest.accounts) throw errors.notFound(`service "${inst.id}" has no accounts`);
    await requireEngine(store.runtime);
    return inst;
  });

  const create: Step[] = [
    requireRole('admin'),
    audited('service_account'),
    validateBody(CreateAccountBody, checkCreateAccount),
    loadInstalled,
    transactional(db),
    async (ctx: PreparedContext<Installation, InputContext<CreateAccountBody>>) => {
      const inst = ctx.prepared;
      const input = ctx.input;
      const who = input.peer ?? input.username!;
      ctx.audit.target(`${inst.id}/${who}`);
      ctx.audit.note(input.peer !== undefined ? { peer: input.peer } : { username: input.username });
      const account = await accounts.create(ctx.trx, inst, input);
      ctx.status = 201;
      // No password here: GET …/accounts/<username>/credentials hands it out.
      ctx.body = { ok: true, service: inst.id, account };
    },
  ];

  /** A write to one account (…/accounts/:username…): the installed service is `ctx.prepared`. */
  const accountWrite = (handler: (ctx: PreparedContext<Installation>, username: string) => Promise<void>): Step[] => [
    requireRole('admin'),
    audited('service_account', (ctx) => `${idOf(ctx)}/${String(ctx.params['username'] ?? '')}`),
    loadInstalled,
    transactional(db),
    (ctx: PreparedContext<Installation>) => handler(ctx, String(ctx.params['username'])),
  ];

  const remove = accountWrite(async (ctx, username) => {
    const row = await accounts.remove(ctx.trx, ctx.prepared, username);
    ctx.audit.note({ peer_id: row.peer_id });
    ctx.body = { ok: true, service: ctx.prepared.id, deleted: row.username };
  });

  const credentials: Middleware = async (ctx) => {
    const inst = await requireInstalled(db, idOf(ctx));
    const username = String(ctx.params['username']);
    const filled = await accounts.credentials(db, inst, username);
    // Handing out a password is worth a line in the audit log, even on a GET.
    await audit.append({
      actor: ctx.state.user?.username ?? 'anonymous',
      action: 'services.account.credentials',
      targetType: 'service_account',
      targetId: `${inst.id}/${username}`,
      result: 'ok',
      ip: ctx.ip || null,
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ok: true, service: inst.id, username, credentials: filled };
  };

  const rotate = accountWrite(async (ctx, username) => {
    const done = await accounts.rotate(ctx.trx, ctx.prepared, username);
    // No password here either: the credentials endpoints hand the new one out.
    ctx.body = { ok: true, service: ctx.prepared.id, ...done };
  });

  return { list, create, remove, credentials, rotate, names };
}

/**
 * Runs a manifest's exec route: `:name` arguments from the path or the JSON body (checked against
 * the account-name rule before anything runs), output read as JSON or lines, answered as `result`.
 */
function execHandler(deps: CellDeps, id: string, route: RouteSpec): Middleware {
  const exec = route.exec!;
  return async (ctx) => {
    const inst = await requireInstalled(deps.db, id);
    const body = (ctx.request as { body?: unknown }).body;
    const fields = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const arg = (name: string) => (ctx.params[name] !== undefined ? ctx.params[name] : fields[name]);
    const { argv, problems } = execRouteArgv(exec.argv, arg);
    if (Object.keys(problems).length > 0) throw errors.validation(problems);
    const args = argv.filter((a, i) => a !== exec.argv[i]);
    ctx.audit.note({ route: `${route.method} ${route.path}`, args });
    await requireEngine(deps.store.runtime);
    const { identity } = await readCellSettings(deps.db);
    const secrets = await serviceSecrets(deps.vault, deps.db, inst.manifest);
    const values = { domain: identity.domain, subdomain: inst.manifest.subdomain, secrets };
    let result: unknown;
    try {
      result = await runExecRoute(deps.store.runtime, deps.store.cellId, inst.manifest, exec, argv, values);
    } catch (err) {
      if (err instanceof ServiceActionError && err.exitCode === 3) throw errors.conflict(err.message);
      if (err instanceof ServiceActionError) throw new HttpError(502, 'service_action_failed', err.message);
      throw err;
    }
    ctx.body = { ok: true, service: id, result };
  };
}

/** The middleware chain of one manifest route, by its handler. */
function routeChain(deps: CellDeps, id: string, route: RouteSpec, h: ReturnType<typeof accountHandlers>): Middleware[] {
  switch (route.handler) {
    case 'proxy':
      return [requireRole('admin'), audited('service', () => id), proxyHandler(deps, id, route)];
    case 'exec':
      return [
        requireRole('admin'),
        ...(route.method === 'GET' ? [] : [audited('service', () => id)]),
        execHandler(deps, id, route),
      ];
    case 'accounts.rotate':
      return h.rotate;
    case 'accounts.list':
      return [requireRole('admin'), h.list];
    case 'accounts.create':
      return h.create;
    case 'accounts.delete':
      return h.remove;
    default:
      return [requireRole('admin'), h.credentials];
  }
}

/** The router of one installed service: its manifest's routes under /api/<id>. Route names are audit actions. */
export function buildServiceRouter(deps: CellDeps, id: string, manifest: ServiceManifest): Router {
  const router = new Router({ prefix: `/api/${id}` });
  const h = accountHandlers(deps, () => id, {
    create: `${id}.accounts.create`,
    delete: `${id}.accounts.delete`,
    rotate: `${id}.accounts.rotate`,
  });
  for (const route of manifest.routes ?? []) {
    // proxy and exec routes are named by method and path (e.g. email.exec.post.aliases), the others by handler.
    const byPath = `${route.method.toLowerCase()}${route.path.replace(/\//g, '.').replace(/:/g, '')}`;
    const name =
      route.handler === 'proxy' || route.handler === 'exec'
        ? `${id}.${route.handler}.${byPath}`
        : `${id}.${route.handler}`;
    const chain = routeChain(deps, id, route, h);
    router.register(route.path, [route.method], chain, { name });
  }
  return router;
}

/** /api/services: what is installed, container status, restart, accounts. */
export function servicesRoutes(deps: CellDeps): Router {
  const { db } = deps;
  const router = new Router({ prefix: '/api/services' });
  const h = accountHandlers(deps, idParam, {
    create: 'services.account.create',
    delete: 'services.account.delete',
    rotate: 'services.account.rotate',
  });

  router.get('/active', requireRole('admin'), async (ctx) => {
    const { identity } = await readCellSettings(db);
    const services = (await listInstallations(db))
      .filter((i) => i.state === 'installed')
      .map((i) => ({
        id: i.id,
        name: i.manifest.name,
        version: i.version,
        subdomain: i.manifest.subdomain,
        host: `${i.manifest.subdomain}.${identity.domain}`,
        capabilities: i.manifest.capabilities,
        installed_at: i.installedAt,
      }));
    ctx.body = { ok: true, services };
  });

  router.get('/catalog/:id/status', requireRole('admin'), async (ctx) => {
    const status = await serviceStatus(deps, idParam(ctx));
    if (!status) throw errors.notFound(`no service "${idParam(ctx)}" in the catalog or installed`);
    ctx.body = status;
  });

  router.post(
    'services.restart',
    '/catalog/:id/restart',
    requireRole('admin'),
    audited('service', (ctx) => String(ctx.params['id'] ?? '')),
    async (ctx) => {
      ctx.body = await restartService(deps, idParam(ctx));
    },
  );

  router.get('/catalog/:id/accounts', requireRole('admin'), h.list);
  router.post(h.names.create, '/catalog/:id/accounts', ...h.create);
  router.delete(h.names.delete, '/catalog/:id/accounts/:username', ...h.remove);
  router.get('/catalog/:id/accounts/:username/credentials', requireRole('admin'), h.credentials);
  router.post(h.names.rotate, '/catalog/:id/accounts/:username/rotate', ...h.rotate);
  return router;
}

/** A peer's connection info for every installed service it has an account in: the admin's view and the peer's own. */
export function serviceCredentialRoutes(deps: CellDeps): Router {
  const { db, audit } = deps;
  const router = new Router();
  const send = async (ctx: Context, peer: { id: number; name: string }, action: string) => {
    const services = await deps.services.accounts.forPeer(db, peer.id);
    await audit.append({
      actor: ctx.state.user?.username ?? 'anonymous',
      action,
      targetType: 'peer',
      targetId: peer.name,
      result: 'ok',
      ip: ctx.ip || null,
      details: { services: services.map((s) => s.service) },
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ok: true, peer: peer.name, services };
  };

  router.get('/api/peers/:name/service-credentials', requireRole('admin'), async (ctx) => {
    await send(ctx, await requirePeer(db, String(ctx.params['name'])), 'peers.service_credentials');
  });

  router.get('/api/peer/service-credentials', requireRole('peer'), async (ctx) => {
    const peer = await findPeerOfUser(db, ctx.state.user!.id);
    if (!peer) throw errors.notFound('this login has no peer');
    await send(ctx, peer, 'peer.service_credentials');
  });
  return router;
}

/**
 * The stable router of installed services' own routes (/api/<id>/…), last in the app's list.
 * Also answers GET /api/<id>/status for every service the cell knows, installed or not.
 */
export function mountedServiceRoutes(deps: CellDeps): Router {
  const { mounts } = deps.services;
  mounts.setHandlers(
    (id, manifest) => buildServiceRouter(deps, id, manifest),
    async (ctx, id) => {
      if (!SERVICE_ID.test(id)) return false;
      const status = await serviceStatus(deps, id);
      if (!status) return false;
      ctx.body = status;
      return true;
    },
  );
  return mounts.router();
}
