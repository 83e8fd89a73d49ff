import type { Context, Next } from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { errors } from './errors.js';

export const BODY_LIMIT = '1mb';
const parse = bodyParser({ enableTypes: ['json'], jsonLimit: BODY_LIMIT, jsonStrict: true });

/**
 * JSON bodies only, at most 1 MiB. A write that carries a body of another type gets 415;
 * malformed JSON and oversized bodies surface as 400/413 through the error handler.
 */
export async function jsonBody(ctx: Context, next: Next): Promise<void> {
  if (['POST', 'PUT', 'PATCH'].includes(ctx.method) && hasBody(ctx) && !ctx.is('application/json')) {
    throw errors.unsupportedMediaType();
  }
  let bodyRead = false;
  try {
    await parse(ctx, () => {
      bodyRead = true;
      return next();
    });
  } catch (err) {
    // An error without an HTTP status while the body is still being read (e.g. zlib rejecting a
    // body sent with `Content-Encoding: gzip` that is not gzip) is the client's fault: 400, not 500.
    if (!bodyRead && !hasStatus(err)) throw errors.badRequest('request body could not be decoded');
    throw err;
  }
}

function hasStatus(err: unknown): boolean {
  const e = err as { status?: unknown; statusCode?: unknown } | null;
  return typeof e?.status === 'number' || typeof e?.statusCode === 'number';
}

function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}
