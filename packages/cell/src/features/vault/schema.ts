import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { isDnsName } from '../../lib/net.js';
import { REVOCATION_REASONS, type CertificateType, type RevocationReason } from './ca.js';
import { parseTrustKey } from './trust-keys.js';

const oneOf = <T extends string>(values: readonly T[], errorMessage: string) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], errorMessage });

export const RotateBody = Type.Object({}, { additionalProperties: false });

export const IssueCertificateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253 }),
    type: oneOf<CertificateType>(['server', 'client'], 'must be "server" or "client"'),
    days: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 825, errorMessage: 'must be a whole number of days, 1-825' }),
    ),
  },
  { additionalProperties: false },
);
export type IssueCertificateBody = Static<typeof IssueCertificateBody>;

export const DEFAULT_CERTIFICATE_DAYS = 365;

/** The name's shape; whether it lies in the cell's domain is checked against the settings at issue time. */
export function checkIssueCertificate(input: IssueCertificateBody): FieldErrors {
  const bare = input.name.startsWith('*.') ? input.name.slice(2) : input.name;
  if (!isDnsName(bare))
    return { name: 'must be a lowercase DNS name like www.home.example.org (a leading "*." is allowed)' };
  if (bare !== input.name && input.type !== 'server')
    return { name: 'a wildcard name is only for server certificates' };
  return {};
}

const reasons = Object.keys(REVOCATION_REASONS) as RevocationReason[];
export const RevokeBody = Type.Object(
  { reason: Type.Optional(oneOf<RevocationReason>(reasons, `must be one of ${reasons.join(', ')}`)) },
  { additionalProperties: false },
);
export type RevokeBody = Static<typeof RevokeBody>;

export const TRUST_KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const TrustKeyBody = Type.Object(
  {
    name: Type.String({
      pattern: TRUST_KEY_NAME.source,
      errorMessage: 'must be 1-63 lowercase letters, digits, ".", "_" or "-"',
    }),
    public_key: Type.String({ minLength: 1, maxLength: 16384 }),
  },
  { additionalProperties: false },
);
export type TrustKeyBody = Static<typeof TrustKeyBody>;

export function checkTrustKey(input: TrustKeyBody): FieldErrors {
  const parsed = parseTrustKey(input.public_key);
  return 'problem' in parsed ? { public_key: parsed.problem } : {};
}
