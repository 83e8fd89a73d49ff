import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { isDnsLabel, parseCidr, parseIPv4 } from '../../lib/net.js';
import { Password } from '../users/schema.js';
import { DateTime } from '../../lib/ajv.js';

const PeerName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
  errorMessage: 'must be 1-63 characters: lowercase letters, digits and inner hyphens',
});
const Description = Type.String({ maxLength: 500 });
const DnsList = Type.Array(Type.String({ maxLength: 15 }), { maxItems: 4, uniqueItems: true });
const CidrList = Type.Array(Type.String({ maxLength: 18 }), { minItems: 1, maxItems: 64, uniqueItems: true });
const Group = Type.Union([
  Type.String({
    pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
    errorMessage: 'must be 1-32 characters: lowercase letters, digits, _ and -',
  }),
  Type.Null(),
]);
const Tags = Type.Array(
  Type.String({
    pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
    errorMessage: 'each tag: 1-32 lowercase letters, digits, _ and -',
  }),
  { maxItems: 16, uniqueItems: true },
);
const ExpiresAt = Type.Union([DateTime('2027-01-31T00:00:00Z'), Type.Null()]);

export const CreatePeerBody = Type.Object(
  {
    name: PeerName,
    description: Type.Optional(Description),
    dns: Type.Optional(DnsList),
    allowed_ips: Type.Optional(CidrList),
    expires_at: Type.Optional(ExpiresAt),
    password: Type.Optional(Password),
    group: Type.Optional(Group),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);
export type CreatePeerBody = Static<typeof CreatePeerBody>;

export const UpdatePeerBody = Type.Object(
  {
    description: Type.Optional(Description),
    dns: Type.Optional(DnsList),
    allowed_ips: Type.Optional(CidrList),
    enabled: Type.Optional(Type.Boolean()),
    expires_at: Type.Optional(ExpiresAt),
    group: Type.Optional(Group),
    tags: Type.Optional(Tags),
    // accepted here only so the check below can say why a rename is refused
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: false, minProperties: 1, errorMessage: 'give at least one field to change' },
);
export type UpdatePeerBody = Static<typeof UpdatePeerBody>;

export const ListPeersQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    group: Type.Optional(Type.String({ maxLength: 32 })),
    tag: Type.Optional(Type.String({ maxLength: 32 })),
    enabled: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
  },
  { additionalProperties: false },
);
export type ListPeersQuery = Static<typeof ListPeersQuery>;

/** Peers per batch: 1,000 adds are one transaction of a few seconds, and their answer stays well under 1 MB. */
export const BATCH_MAX = 1000;

/**
 * `add` takes `peers` (each as POST /api/peers takes one); `enable`, `disable` and `delete` take
 * `names`. All or nothing: checkBatch refuses the wrong list for the action.
 */
export const BatchBody = Type.Object(
  {
    action: Type.Union([Type.Literal('add'), Type.Literal('enable'), Type.Literal('disable'), Type.Literal('delete')]),
    names: Type.Optional(Type.Array(PeerName, { minItems: 1, maxItems: BATCH_MAX, uniqueItems: true })),
    peers: Type.Optional(Type.Array(CreatePeerBody, { minItems: 1, maxItems: BATCH_MAX })),
  },
  { additionalProperties: false },
);
export type BatchBody = Static<typeof BatchBody>;

/** The list the action needs (and not the other one), each new peer's fields, and no name twice. */
export function checkBatch(input: BatchBody): FieldErrors {
  const fields: FieldErrors = {};
  if (input.action === 'add') {
    if (input.peers === undefined) fields['peers'] = 'is required for "add"';
    if (input.names !== undefined) fields['names'] = 'is not used by "add": give the new peers in "peers"';
    const seen = new Set<string>();
    input.peers?.forEach((peer, i) => {
      if (typeof peer?.name === 'string') {
        if (seen.has(peer.name)) fields[`peers.${i}.name`] = 'appears earlier in this batch';
        seen.add(peer.name);
      }
      for (const [field, problem] of Object.entries(checkPeerFields(peer ?? {}))) {
        fields[`peers.${i}.${field}`] = problem;
      }
    });
  } else {
    if (input.names === undefined) fields['names'] = `is required for "${input.action}"`;
    if (input.peers !== undefined) fields['peers'] = `is only for "add"; "${input.action}" takes "names"`;
  }
  return fields;
}

export const TrafficQuery = Type.Object(
  { period: Type.Optional(Type.Union([Type.Literal('24h'), Type.Literal('7d'), Type.Literal('30d')])) },
  { additionalProperties: false },
);
export type TrafficQuery = Static<typeof TrafficQuery>;

export const FormatQuery = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('png'), Type.Literal('svg')])),
    download: Type.Optional(
      Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('true'), Type.Literal('false')]),
    ),
  },
  { additionalProperties: false },
);
export type FormatQuery = Static<typeof FormatQuery>;

/** DNS entries must be IPv4 addresses; routes must be CIDRs; expiry in the future. */
export function checkPeerFields(input: {
  dns?: string[];
  allowed_ips?: string[];
  expires_at?: string | null;
}): FieldErrors {
  const fields: FieldErrors = {};
  input.dns?.forEach((d, i) => {
    if (parseIPv4(d) === undefined) fields[`dns.${i}`] = 'must be an IPv4 address';
  });
  input.allowed_ips?.forEach((c, i) => {
    const cidr = parseCidr(c);
    if (!cidr) fields[`allowed_ips.${i}`] = 'must be an IPv4 CIDR like 10.8.0.0/24 or 0.0.0.0/0';
  });
  if (input.expires_at && Date.parse(input.expires_at) <= Date.now()) fields['expires_at'] = 'must be in the future';
  return fields;
}

export function checkPeerUpdate(input: UpdatePeerBody): FieldErrors {
  const fields = checkPeerFields(input);
  if (input.name !== undefined)
    fields['name'] = 'peers cannot be renamed: their keys, address and login belong to the name; delete and add again';
  return fields;
}

export const isPeerName = (name: string) => isDnsLabel(name);
