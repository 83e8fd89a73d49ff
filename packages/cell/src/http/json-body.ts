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
  await parse(ctx, next);
}

function hasBody(ctx: Context): boolean {
  const length = ctx.get('content-length');
  return (length !== '' && length !== '0') || ctx.get('transfer-encoding') !== '';
}
