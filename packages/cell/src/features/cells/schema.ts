import { Type, type Static } from '@sinclair/typebox';

const CellName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
  errorMessage: 'must be a DNS label: 1-63 lowercase letters, digits or inner hyphens',
});
const Domain = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$',
  errorMessage: 'must be a lowercase DNS name',
});
const Key = Type.String({ pattern: '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$', errorMessage: 'must be a WireGuard key' });
const Endpoint = Type.String({ minLength: 3, maxLength: 260 });
const Subnet = Type.String({ minLength: 9, maxLength: 18 });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });
const Nonce = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', errorMessage: 'must be 32 bytes, base64url' });
const Mac = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', errorMessage: 'must be an HMAC-SHA256, base64url' });
const Service = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', errorMessage: 'must be a service id' });

export const Policy = Type.Union([
  Type.Object({ mode: Type.Literal('cell_only') }, { additionalProperties: false }),
  Type.Object(
    { mode: Type.Literal('services'), services: Type.Array(Service, { minItems: 1, maxItems: 32, uniqueItems: true }) },
    { additionalProperties: false },
  ),
  Type.Object({ mode: Type.Literal('none') }, { additionalProperties: false }),
]);
export type Policy = Static<typeof Policy>;

export const CreateInviteBody = Type.Object(
  {
    /** How long the invite may be accepted (default 60 minutes, at most 7 days). */
    ttl_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_080 })),
    /** host:port where the other cell reaches this one (default: the cell's network.endpoint). */
    endpoint: Type.Optional(Endpoint),
    /** The invited cell delivers its response to this cell itself (default TTL 15 minutes). */
    one_step: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateInviteBody = Static<typeof CreateInviteBody>;

export const CodeBody = Type.Object(
  {
    code: Type.String({ minLength: 10, maxLength: 4096 }),
    /** Accept only: host:port where the inviting cell reaches this one (optional: it may sit behind NAT). */
    endpoint: Type.Optional(Endpoint),
    policy: Type.Optional(Policy),
  },
  { additionalProperties: false },
);
export type CodeBody = Static<typeof CodeBody>;

export const PolicyBody = Type.Object({ policy: Policy }, { additionalProperties: false });
export type PolicyBody = Static<typeof PolicyBody>;

/** What an invite code carries (base64url of this JSON). */
export const InvitePayload = Type.Object(
  {
    v: Type.Literal(1),
    name: CellName,
    domain: Domain,
    public_key: Key,
    endpoint: Endpoint,
    subnet: Subnet,
    sync_port: Port,
    nonce: Nonce,
    expires_at: Type.String({ maxLength: 40 }),
    /** One-step invites: the TCP port on the endpoint's host where the response is delivered. */
    link_port: Type.Optional(Port),
  },
  { additionalProperties: false },
);
export type InvitePayload = Static<typeof InvitePayload>;

/** What a response code carries: who answered, and the proof that it holds `public_key`'s private key. */
export const ResponsePayload = Type.Object(
  {
    v: Type.Literal(1),
    nonce: Nonce,
    name: CellName,
    domain: Domain,
    public_key: Key,
    endpoint: Type.Union([Endpoint, Type.Null()]),
    subnet: Subnet,
    sync_port: Port,
    mac: Mac,
  },
  { additionalProperties: false },
);
export type ResponsePayload = Static<typeof ResponsePayload>;

const RemotePeer = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }),
    address: Type.String({ format: 'ipv4' }),
    public_key: Key,
    groups: Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 }),
    enabled: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type RemotePeer = Static<typeof RemotePeer>;

export const Change = Type.Union([
  Type.Object({ op: Type.Literal('upsert'), peer: RemotePeer }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal('delete'), name: Type.String({ maxLength: 63 }) }, { additionalProperties: false }),
  Type.Object({ op: Type.Literal('unlink') }, { additionalProperties: false }),
  // the inviting cell's first message: the link is complete on its side (nothing to apply)
  Type.Object({ op: Type.Literal('hello') }, { additionalProperties: false }),
]);
export type Change = Static<typeof Change>;

/** One peer-sync message: consecutive entries of the sender's outbox for this link. */
export const SyncMessage = Type.Object(
  {
    v: Type.Literal(1),
    from: Key,
    to: Key,
    sent_at: Type.String({ maxLength: 40 }),
    entries: Type.Array(
      Type.Object({ seq: Type.Integer({ minimum: 1 }), change: Change }, { additionalProperties: false }),
      {
        minItems: 1,
        maxItems: 1000,
      },
    ),
  },
  { additionalProperties: false },
);
export type SyncMessage = Static<typeof SyncMessage>;
