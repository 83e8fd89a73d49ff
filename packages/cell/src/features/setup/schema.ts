import { Type, type Static } from '@sinclair/typebox';
import { Password, Username } from '../users/schema.js';
import { Identity, Network } from '../config/schema.js';

export const STEPS = ['admin', 'identity', 'network', 'review'] as const;
export type StepName = (typeof STEPS)[number];

export const AdminStep = Type.Object({ username: Username, password: Password }, { additionalProperties: false });
export type AdminStep = Static<typeof AdminStep>;
export const ReviewStep = Type.Object({}, { additionalProperties: false });

/** Each step's body schema: the wizard validates the current step against its own. */
export const STEP_SCHEMAS = { admin: AdminStep, identity: Identity, network: Network, review: ReviewStep } as const;
