import type { Context, Next } from 'koa';
import { HttpError } from './errors.js';
import type { Logger } from '../lib/logger.js';

/** Errors that libraries (body parser, koa itself) throw with an `expose`d 4xx status. */
interface ExposedError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  message?: string;
}

/** The error as the client will see it (an HttpError), or undefined for an internal error (a 500). */
export function asHttpError(err: unknown): HttpError | undefined {
  return err instanceof HttpError ? err : fromLibraryError((err ?? {}) as ExposedError);
}

function fromLibraryError(err: ExposedError): HttpError | undefined {
  const status = err.status ?? err.statusCode;
  if (!status || status < 400 || status >= 500) return undefined;
  if (status === 413) return new HttpError(413, 'payload_too_large', 'request body too large (limit 1 MiB)');
  if (status === 415 && /encoding/i.test(err.message ?? '')) {
    return new HttpError(415, 'unsupported_media_type', 'unsupported Content-Encoding (use gzip, deflate, br or none)');
  }
  if (status === 415) return new HttpError(415, 'unsupported_media_type', 'request body must be application/json');
  if (status === 400 && (err.type === 'entity.parse.failed' || /JSON|Unexpected|invalid/i.test(err.message ?? ''))) {
    return new HttpError(400, 'malformed_json', 'request body is not valid JSON');
  }
  if (status === 400) return new HttpError(400, 'bad_request', 'bad request');
  return new HttpError(status, 'http_error', err.expose && err.message ? err.message : 'request failed');
}

const BODYLESS: Record<number, [code: string, error: string]> = {
  404: ['not_found', 'not found'],
  405: ['method_not_allowed', 'method not allowed'],
  501: ['not_implemented', 'method not implemented'],
};

/**
 * An answer that goes out before the request's body was read (413, 415, 401 before the body
 * parser, …) closes the connection: the unread rest of the body would otherwise sit in front of
 * the next request on a keep-alive connection (the body parser pauses the stream when it gives
 * up), and that request would never be answered. The client opens a new connection instead.
 */
function closeIfBodyUnread(ctx: Context): void {
  const req = ctx.req;
  if (req.complete || ctx.res.headersSent) return;
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return;
  ctx.res.setHeader('Connection', 'close');
}

/** Maps every thrown error to the one JSON error shape; unknown errors become a bare 500. */
export function errorHandler(logger: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      closeIfBodyUnread(ctx);
      // Statuses set without a body (no route: 404; the router's 405/501) get the one error shape too.
      const status = ctx.response.status;
      if (status >= 400 && ctx.response.body == null) {
        const [code, error] = BODYLESS[status] ?? ['http_error', 'request failed'];
        ctx.status = status;
        ctx.body = { ok: false, error, code, fields: {} };
      }
    } catch (raw) {
      closeIfBodyUnread(ctx);
      const err = asHttpError(raw);
      if (err) {
        ctx.status = err.status;
        for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
        ctx.body = { ok: false, error: err.message, code: err.id, fields: err.fields };
        return;
      }
      // Never leak internals: the stack goes to the log, the client gets a generic 500.
      logger.error('unhandled error', { method: ctx.method, path: ctx.path, error: describe(raw) });
      ctx.status = 500;
      ctx.body = { ok: false, error: 'internal error', code: 'internal', fields: {} };
    }
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
