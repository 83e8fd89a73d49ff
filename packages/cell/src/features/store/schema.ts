import { Type, type Static } from '@sinclair/typebox';

const ServiceId = Type.String({
  pattern: '^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$',
  errorMessage: 'must be a service id: a-z, 0-9 and "-", starting with a letter, at most 32 characters',
});

export const InstallBody = Type.Object(
  {
    id: ServiceId,
    /** Answer when the job has finished (healthy or failed) instead of at once with 202. */
    wait: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type InstallBody = Static<typeof InstallBody>;

export const RemoveBody = Type.Object(
  {
    id: ServiceId,
    /** Also delete the service's data volumes, generated secrets and accounts. Default false. */
    purge: Type.Optional(Type.Boolean()),
    /** As install's. Removal always answers once finished, so it changes nothing; a client may send both alike. */
    wait: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RemoveBody = Static<typeof RemoveBody>;

export const SERVICE_ID = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
