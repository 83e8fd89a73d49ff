import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { DateTime } from '../../lib/ajv.js';

const filters = {
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  target_type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  target_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  result: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('denied'), Type.Literal('error')])),
  since: Type.Optional(DateTime()),
  until: Type.Optional(DateTime()),
};

export const AuditQuery = Type.Object(
  {
    ...filters,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;
export type AuditFilters = Omit<AuditQuery, 'limit' | 'offset'>;

export const ExportQuery = Type.Object(
  { ...filters, format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json')])) },
  { additionalProperties: false },
);
export type ExportQuery = Static<typeof ExportQuery>;

export const ArchiveBody = Type.Object({ before: DateTime() }, { additionalProperties: false });
export type ArchiveBody = Static<typeof ArchiveBody>;

/** Archiving up to a time that has not come yet would take entries still being written. */
export function checkArchiveBody(body: ArchiveBody, now = Date.now()): FieldErrors {
  return Date.parse(body.before) > now ? { before: 'must not be in the future' } : {};
}

export const VerifyQuery = Type.Object(
  {
    archives: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')]),
    ),
  },
  { additionalProperties: false },
);
export type VerifyQuery = Static<typeof VerifyQuery>;
