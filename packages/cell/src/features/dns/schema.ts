import { Type, type Static } from '@sinclair/typebox';
import type { FieldErrors } from '../../http/errors.js';
import { recordProblems } from './config.js';

export const RecordBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253 }),
    type: Type.Unsafe<'A' | 'AAAA' | 'CNAME' | 'TXT'>({
      type: 'string',
      enum: ['A', 'AAAA', 'CNAME', 'TXT'],
      errorMessage: 'must be A, AAAA, CNAME or TXT',
    }),
    value: Type.String({ minLength: 1, maxLength: 255 }),
  },
  { additionalProperties: false },
);
export type RecordBody = Static<typeof RecordBody>;

export const EmptyBody = Type.Object({}, { additionalProperties: false });

/** Names and values that could not go into the resolver's config as they are: refused, never escaped. */
export function checkRecord(input: RecordBody): FieldErrors {
  return recordProblems(input);
}
