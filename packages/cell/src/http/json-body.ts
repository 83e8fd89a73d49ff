import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import inflate from 'inflation';
import { errors } from './errors.js';

export const BODY_LIMIT = '1mb';

/**
 * JSON bodies only, at most 1 MiB (after decompression). raw-body enforces the limit while
 * reading, inflation handles Content-Encoding. A write that carries a body of another type gets
 * 415; malformed JSON is a 400 malformed_json; oversized bodies a 413 through the error handler.
 * The parsed value lands on ctx.request.body for the validator; handlers read ctx.input.
 */
export function jsonBody(ctx: Context, next: Next): Promise<void> {
  if (!BODY_METHODS.has(ctx.request.method) || !hasBody(ctx)) return next();
  return readJsonBody(ctx, next);
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

async function readJsonBody(ctx: Context, next: Next): Promise<void> {
  if (!ctx.is('application/json')) throw errors.unsupportedMediaType();
  let text: string;
  try {
    text = await getRawBody(inflate(ctx.req), { limit: BODY_LIMIT, encoding: 'utf8' });
  } catch (err) {
    // raw-body and inflation set a status (413 too large, 415 unknown encoding, 400 aborted);
    // anything else while reading (zlib rejecting a body that is not really gzip) is the client's fault too
    if (hasStatus(err)) throw err;
    throw errors.badRequest('request body could not be decoded');
  }
  if (text.trim() !== '') {
    try {
      (ctx.request as { body?: unknown }).body = JSON.parse(text);
    } catch {
      throw errors.malformedJson();
    }
  }
  await next();
}

function hasStatus(err: unknown): boolean {
  const e = err as { status?: unknown; statusCode?: unknown } | null;
  return typeof e?.status === 'number' || typeof e?.statusCode === 'number';
}

function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}
