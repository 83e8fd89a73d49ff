import type { Context, Next } from 'koa';
import { isIP } from 'node:net';

/**
 * With `trust_proxy`, Koa's `ctx.ip` is the last X-Forwarded-For hop exactly as the header wrote it:
 * any text at all ("1.2.3.4:80", "<script>", 10 kB of junk). Only a parsed IP address is kept; any
 * other value falls back to the address the connection came from (the proxy). The audit log, the
 * rate limiter and everything else that reads `ctx.ip` then see an address, never the raw header.
 */
export function clientAddress(ctx: Context, next: Next): Promise<void> {
  if (isIP(ctx.request.ip) === 0) ctx.request.ip = ctx.req.socket.remoteAddress ?? '';
  return next();
}
