import { Type } from '@sinclair/typebox';

/** POST /api/caddy/cert-renew takes no options: `{}` or no body. */
export const RenewBody = Type.Object({}, { additionalProperties: false });
