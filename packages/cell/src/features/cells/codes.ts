/** Invite and response codes: base64url of a small JSON document, validated on the way in. */
import { compile } from '../../lib/ajv.js';
import { errors } from '../../http/errors.js';
import { InvitePayload, ResponsePayload } from './schema.js';

const validInvite = compile(InvitePayload);
const validResponse = compile(ResponsePayload);

export const encodeCode = (payload: object): string =>
  Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');

function decode(code: string): unknown {
  const text = code.trim();
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

export function decodeInvite(code: string): InvitePayload {
  const value = decode(code);
  if (!validInvite(value)) throw errors.badRequest('this is not a cell invite code', { code: 'is not an invite code' });
  return value;
}

export function decodeResponse(code: string): ResponsePayload {
  const value = decode(code);
  if (!validResponse(value))
    throw errors.badRequest('this is not a cell response code', { code: 'is not a response code' });
  return value;
}
