import type { ErrorObject } from 'ajv';
import { Type } from '@sinclair/typebox';
import { createAjv, fieldErrors as shapeFieldErrors, schemaCompiler } from '@pic/manifest/ajv';
import type { FieldErrors } from '../http/errors.js';

/** One ajv for the whole cell (the project's shared setup), with the formats the API uses. */
export const ajv = createAjv(['date-time', 'uri', 'email', 'ipv4']);
export const compile = schemaCompiler(ajv);

/** `{ field: reason }`, one reason per field, named by its JSON path; `_body` for the body as a whole. */
export function fieldErrors(errs: ErrorObject[] | null | undefined, root = ''): FieldErrors {
  return shapeFieldErrors(errs, { root, whole: '_body' });
}

/**
 * A strict RFC 3339 date-time (the shared ajv's format: upper-case T and Z, no leap second, a value
 * `Date` can hold). Every date-time the API accepts uses this, so none can fail later as a 500.
 */
export const DateTime = (example = '2026-01-31T00:00:00Z') =>
  Type.String({ format: 'date-time', maxLength: 40, errorMessage: `must be an RFC 3339 date-time, e.g. ${example}` });
