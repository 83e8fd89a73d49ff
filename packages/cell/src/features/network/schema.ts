import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { dnsNameProblem } from '../dns/config.js';

export const ResolveQuery = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253 }),
    /** cell: the cell's own resolver on the tunnel address; system: the machine's. */
    via: Type.Optional(
      Type.Unsafe<'cell' | 'system'>({
        type: 'string',
        enum: ['cell', 'system'],
        errorMessage: 'must be cell or system',
      }),
    ),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
export type ResolveQuery = Static<typeof ResolveQuery>;

export const ReachQuery = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 100, maximum: 15_000 })),
  },
  { additionalProperties: false },
);
export type ReachQuery = Static<typeof ReachQuery>;

export function checkResolve(q: ResolveQuery): FieldErrors {
  const problem = dnsNameProblem(q.name.replace(/\.$/, '').toLowerCase());
  return problem ? { name: problem } : {};
}

export function checkReach(q: ReachQuery): FieldErrors {
  let url: URL;
  try {
    url = new URL(q.url);
  } catch {
    return { url: 'must be an absolute http:// or https:// URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { url: 'must be an http:// or https:// URL' };
  if (url.username || url.password) return { url: 'must not carry a user name or password' };
  return {};
}
