import Koa from 'koa';
import type { Context, Next } from 'koa';
import type SQLite from 'better-sqlite3';
import type { CellDeps } from './deps.js';
import { errorHandler } from './http/error-handler.js';
import { sessionMiddleware } from './http/session.js';
import { rateLimitRequests } from './http/rate-limit.js';
import { checkHostAndOrigin } from './http/hosts.js';
import { guardApi, isApiPath } from './http/guard.js';
import { jsonBody } from './http/json-body.js';
import { routerDispatch } from './http/dispatch.js';
import { authRoutes } from './features/auth/routes.js';
import { setupRoutes } from './features/setup/routes.js';
import { configRoutes } from './features/config/routes.js';
import { healthRoutes } from './features/health/routes.js';
import { statusRoutes } from './features/status/routes.js';
import { auditRoutes } from './features/audit/routes.js';
import { vaultRoutes } from './features/vault/routes.js';
import { peerRoutes, peerSelfRoutes, wireguardRoutes } from './features/peers/routes.js';
import { consoleRoutes } from './features/console/routes.js';
import { storeRoutes } from './features/store/routes.js';
import { caddyRoutes } from './features/caddy/routes.js';
import { dnsRoutes } from './features/dns/routes.js';
import { networkRoutes, ntpRoutes } from './features/network/routes.js';
import { cellRoutes } from './features/cells/routes.js';
import { mountedServiceRoutes, serviceCredentialRoutes, servicesRoutes } from './features/services/routes.js';
import { auditWrites, NO_AUDIT, type RouteNamer } from './http/audit.js';
import { clientAddress } from './http/client-ip.js';
import type Router from '@koa/router';
import './http/context.js';

// Middleware that only passes the request on returns next() itself instead of awaiting it: every
// request crosses each of them, and an async wrapper per layer is a measurable share of a cheap GET.
// Headers that go on every answer are set on Node's response itself: Koa 3's ctx.set builds two
// arrays and a closure per call, several times the cost of the header. For the same reason the
// middleware on every request's way read `ctx.request.path` and `ctx.request.method`, not
// `ctx.path` and `ctx.method`: those are one generic delegate getter (`this[target][name]`) that V8 can only
// serve through its megamorphic lookup, and a request crossed it about fifteen times.
function securityHeaders(ctx: Context, next: Next): Promise<void> {
  const res = ctx.res;
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  if (isApiPath(ctx.request.path)) res.setHeader('Cache-Control', 'no-store');
  return next();
}

function onlyApi(middleware: (ctx: Context, next: Next) => Promise<void>) {
  return (ctx: Context, next: Next) => (isApiPath(ctx.request.path) ? middleware(ctx, next) : next());
}

/** The name of the route (method + path) would reach, across all routers. */
function routeNamer(routers: Router[]): RouteNamer {
  return (method, path) => {
    for (const router of routers) {
      const layer = router.match(path, method).pathAndMethod.findLast((l) => l.methods.length > 0);
      if (layer) return layer.name ?? undefined;
    }
    return undefined;
  };
}

/** Composes the cell's middleware and feature routers; nothing else happens here. */
export function buildApp(deps: CellDeps, sqlite: SQLite.Database): Koa {
  // Behind our own proxy, trust only the address it saw (the last X-Forwarded-For hop), not what a client wrote.
  const app = new Koa({ proxy: deps.config.trustProxy, maxIpsCount: 1 });
  app.silent = true; // the error handler logs what matters
  // Reads have no audit entry: an inert one on the prototype, so handlers call ctx.audit.note() without a test.
  app.context.audit = NO_AUDIT;
  if (deps.config.trustProxy) app.use(clientAddress);
  app.use(errorHandler(deps.logger));
  const routers = [
    healthRoutes(deps, sqlite),
    setupRoutes(deps),
    authRoutes(deps),
    statusRoutes(deps),
    configRoutes(deps),
    auditRoutes(deps),
    vaultRoutes(deps),
    peerRoutes(deps),
    peerSelfRoutes(deps),
    wireguardRoutes(deps),
    storeRoutes(deps),
    caddyRoutes(deps),
    dnsRoutes(deps),
    ntpRoutes(),
    networkRoutes(deps),
    cellRoutes(deps),
    servicesRoutes(deps),
    serviceCredentialRoutes(deps),
    // Last: the routes of installed services (/api/<id>/…), swapped on install and removal.
    mountedServiceRoutes(deps),
  ];
  app.use(auditWrites(deps.audit, deps.logger, routeNamer(routers)));
  app.use(securityHeaders);
  // Against DNS rebinding: only the cell's own names, on every path, before setup too.
  app.use(checkHostAndOrigin(deps.knownHosts));
  // The console's files and screens (GET/HEAD outside /api and /health) need no session.
  app.use(consoleRoutes(deps.console));
  app.use(sessionMiddleware(app, deps.sessions, deps.config.session.idleMs));
  app.use(onlyApi(rateLimitRequests(deps.apiLimiter)));
  app.use(guardApi({ sessions: deps.sessions, isSetupComplete: () => deps.setup.isComplete() }));
  app.use(onlyApi(jsonBody));

  // Each router's routes() and allowedMethods(), in this order, for the routers that can match the path.
  app.use(routerDispatch(routers));
  return app;
}
