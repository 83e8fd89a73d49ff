import type { Middleware } from 'koa';
import type { RouteSpec } from '@pic/manifest';
import type { CellDeps } from '../../deps.js';
import { errors, HttpError } from '../../http/errors.js';
import { readCellSettings } from '../config/service.js';
import { describeError } from '../store/engine.js';
import { requireInstalled } from '../store/queries.js';
import { manifestLib } from '../store/manifest-lib.js';
import { serviceSecrets } from '../store/specs.js';
import { containerBaseUrl, scrub, ServiceActionError } from './actions.js';

const PROXY_TIMEOUT_MS = 30_000;
const MAX_PROXY_REPLY = 4 * 1024 * 1024;

/** Forwards a request to a service container (a manifest route with handler `proxy`). */
export function proxyHandler(deps: CellDeps, id: string, route: RouteSpec): Middleware {
  const proxy = route.proxy!;
  return async (ctx) => {
    const inst = await requireInstalled(deps.db, id);
    let base: string;
    try {
      base = await containerBaseUrl(deps.store.runtime, deps.store.cellId, id, proxy.container, proxy.port);
    } catch (err) {
      if (err instanceof ServiceActionError) throw new HttpError(502, 'service_unavailable', err.message);
      throw errors.unavailable(`the container engine did not answer: ${describeError(err)}`);
    }
    const path = proxy.path.replace(/:([a-zA-Z][a-zA-Z0-9]*)/g, (_m, name: string) =>
      encodeURIComponent(String(ctx.params[name] ?? '')),
    );
    const { identity } = await readCellSettings(deps.db);
    const values = {
      domain: identity.domain,
      subdomain: inst.manifest.subdomain,
      secrets: await serviceSecrets(deps.vault, deps.db, inst.manifest),
    };
    const { renderTemplate } = await manifestLib();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(proxy.headers ?? {})) headers[k] = renderTemplate(v, values);
    const accept = ctx.get('accept');
    if (accept) headers['accept'] = accept;
    const parsed = (ctx.request as { body?: unknown }).body;
    let body: string | undefined;
    if (parsed !== undefined && ctx.method !== 'GET' && ctx.method !== 'DELETE') {
      body = JSON.stringify(parsed);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      const query = ctx.querystring ? `?${ctx.querystring}` : '';
      res = await fetch(`${base}${path}${query}`, {
        method: ctx.method,
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(PROXY_TIMEOUT_MS),
      });
    } catch (err) {
      throw new HttpError(502, 'service_unavailable', `${id} did not answer: ${scrub(describeError(err), values)}`);
    }
    const reply = Buffer.from(await res.arrayBuffer());
    if (reply.length > MAX_PROXY_REPLY)
      throw new HttpError(502, 'service_reply_too_large', `${id} answered with more than ${MAX_PROXY_REPLY} bytes`);
    ctx.status = res.status;
    ctx.type = res.headers.get('content-type') ?? 'application/octet-stream';
    ctx.body = reply;
    ctx.audit.note({ route: `${route.method} ${route.path}`, status: res.status });
  };
}
