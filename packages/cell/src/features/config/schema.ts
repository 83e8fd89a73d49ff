import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { endpointProblem, isDnsLabel, isDnsName, subnetProblem } from '../../lib/net.js';

/** The cell's identity and network, set by the wizard and changed later through PUT /api/config. */
export const identityFields = {
  cell_name: Type.String({ minLength: 1, maxLength: 63 }),
  domain: Type.String({ minLength: 1, maxLength: 253 }),
};
export const networkFields = {
  wireguard_port: Type.Integer({ minimum: 1, maximum: 65535, errorMessage: 'must be a port number 1-65535' }),
  subnet: Type.String({ minLength: 1, maxLength: 18 }),
  endpoint: Type.Optional(Type.Union([Type.String({ maxLength: 260 }), Type.Null()])),
};

export const Identity = Type.Object(identityFields, { additionalProperties: false });
export type Identity = Static<typeof Identity>;
export const Network = Type.Object(networkFields, { additionalProperties: false });
export type Network = Static<typeof Network>;

export const ConfigPatch = Type.Object(
  {
    identity: Type.Optional(Type.Partial(Identity, { additionalProperties: false })),
    network: Type.Optional(Type.Partial(Network, { additionalProperties: false })),
  },
  { additionalProperties: false, minProperties: 1, errorMessage: 'give at least one of identity, network' },
);
export type ConfigPatch = Static<typeof ConfigPatch>;

/** Checks JSON Schema cannot express; `prefix` names the field's section (e.g. "identity."). */
export function checkIdentity(input: Partial<Identity>, prefix = ''): FieldErrors {
  const fields: FieldErrors = {};
  if (typeof input.cell_name === 'string' && !isDnsLabel(input.cell_name)) {
    fields[`${prefix}cell_name`] = 'must be a DNS label: 1-63 lowercase letters, digits or inner hyphens';
  }
  if (typeof input.domain === 'string' && !isDnsName(input.domain)) {
    fields[`${prefix}domain`] = 'must be a lowercase DNS name like home.example.org';
  }
  return fields;
}

export function checkNetwork(input: Partial<Network>, prefix = ''): FieldErrors {
  const fields: FieldErrors = {};
  if (typeof input.subnet === 'string') {
    const problem = subnetProblem(input.subnet);
    if (problem) fields[`${prefix}subnet`] = problem;
  }
  if (typeof input.endpoint === 'string' && input.endpoint !== '') {
    const problem = endpointProblem(input.endpoint);
    if (problem) fields[`${prefix}endpoint`] = problem;
  }
  return fields;
}

export function checkConfigPatch(input: ConfigPatch): FieldErrors {
  return { ...checkIdentity(input.identity ?? {}, 'identity.'), ...checkNetwork(input.network ?? {}, 'network.') };
}
