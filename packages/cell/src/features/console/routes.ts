import type { Context, Next } from 'koa';
import { errors } from '../../http/errors.js';
import { isApiPath } from '../../http/guard.js';
import { CONSOLE_CSP, isScreenPath, type ConsoleAssets } from './service.js';

const HEALTH = /^\/health\/?$/i;

/**
 * Serves the built console at / (GET and HEAD only): content-hashed assets cached for a year as
 * immutable, index.html revalidated every time (no-cache + ETag), the console's screens falling
 * back to index.html, and the console's CSP on every answer. /api/* and /health pass through
 * untouched; anything else that is not a built file passes on to the 404.
 */
export function consoleRoutes(assets: ConsoleAssets) {
  return function serveConsole(ctx: Context, next: Next): Promise<void> {
    const { method, path } = ctx.request;
    if ((method !== 'GET' && method !== 'HEAD') || isApiPath(path) || HEALTH.test(path)) return next();
    const file = assets.resolve(path);
    if (!file) {
      if (assets.unavailable && (path === '/' || isScreenPath(path)))
        throw errors.unavailable(`the console is not built (${assets.unavailable}): run npm run build`);
      return next();
    }
    ctx.set('Content-Security-Policy', CONSOLE_CSP);
    ctx.set('Cache-Control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    ctx.set('Vary', 'Accept-Encoding');
    ctx.type = file.type;
    const gz = ctx.acceptsEncodings('gzip', 'identity') === 'gzip' ? file.gzipped : undefined;
    // each encoding is its own representation, with its own strong ETag
    ctx.etag = gz ? `${file.etag.slice(0, -1)}-gz"` : file.etag;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return Promise.resolve();
    }
    if (gz) ctx.set('Content-Encoding', 'gzip');
    ctx.body = gz ?? file.body;
    return Promise.resolve();
  };
}
