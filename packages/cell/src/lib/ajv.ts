import type { ErrorObject } from 'ajv';
import { createAjv, fieldErrors as shapeFieldErrors, schemaCompiler } from '@pic/manifest/ajv';
import type { FieldErrors } from '../http/errors.js';

/** One ajv for the whole cell (the project's shared setup), with the formats the API uses. */
export const ajv = createAjv(['date-time', 'uri', 'email']);
export const compile = schemaCompiler(ajv);

/** `{ field: reason }`, one reason per field, named by its JSON path; `_body` for the body as a whole. */
export function fieldErrors(errs: ErrorObject[] | null | undefined, root = ''): FieldErrors {
  return shapeFieldErrors(errs, { root, whole: '_body' });
}
