import type Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';

/**
 * The part of a path that decides which routers can match it: `/api/<segment>` under /api/, else
 * `/<segment>`; lowercased, because the routers match case-insensitively (see http/guard.ts).
 */
export function routeKey(path: string): string {
  const p = path.toLowerCase();
  const start = p.startsWith('/api/') ? 5 : 1;
  const end = p.indexOf('/', start);
  return end === -1 ? p : p.slice(0, end);
}

/** Anything in a key that path-to-regexp would read as a pattern rather than a literal. */
const PATTERN = /[:*?()[\]{}+\\]/;

/** The keys a router's routes can match, or 'any' when one of them is not a literal there (a RegExp, a parameter). */
function keysOf(router: Router): Set<string> | 'any' {
  const keys = new Set<string>();
  for (const layer of router.stack) {
    if (typeof layer.path !== 'string') return 'any';
    const key = routeKey(layer.path);
    if (PATTERN.test(key)) return 'any';
    keys.add(key);
  }
  return keys;
}

/**
 * The feature routers as one middleware, each with its `routes()` and `allowedMethods()` as if
 * they were all `app.use`d in order, but a request only passes through the routers that can match
 * its path: a router whose every route is under another `/api/<segment>` could add nothing to it
 * (no route, no entry for the 405/501 answers), so it is left out. A path under no known key
 * passes through all of them, exactly as before.
 */
export function routerDispatch(routers: Router[]): Middleware {
  const parts = routers.map((router) => ({
    keys: keysOf(router),
    middleware: [
      router.routes() as unknown as Middleware,
      router.allowedMethods({ throw: false }) as unknown as Middleware,
    ],
  }));
  const all = compose(parts.flatMap((p) => p.middleware));
  const byKey = new Map<string, Middleware>();
  for (const key of new Set(parts.flatMap((p) => (p.keys === 'any' ? [] : [...p.keys])))) {
    byKey.set(key, compose(parts.filter((p) => p.keys === 'any' || p.keys.has(key)).flatMap((p) => p.middleware)));
  }
  return function dispatch(ctx: Context, next: Next) {
    return (byKey.get(routeKey(ctx.request.path)) ?? all)(ctx, next);
  };
}
