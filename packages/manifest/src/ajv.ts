import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { Static, TSchema } from '@sinclair/typebox';
import type { FieldErrors } from './errors.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = addFormatsImport.default;

/** Strict, all errors, no coercion and no defaults: what is validated is exactly what was written. */
export const ajv = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false, verbose: true });
addFormats(ajv, ['date-time']);
// A schema may carry a human message for its field; ajv itself ignores it.
ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });

const compiled = new WeakMap<object, ValidateFunction>();

export function compile<S extends TSchema>(schema: S): ValidateFunction<Static<S>> {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn as ValidateFunction<Static<S>>;
}

/** ajv's errors as `{ "containers.0.image": reason }`, one reason per field (the first). */
export function fieldErrors(errs: ErrorObject[] | null | undefined): FieldErrors {
  const fields: FieldErrors = {};
  for (const e of errs ?? []) {
    let path = e.instancePath.replace(/^\//, '').split('/').map(unescapePointer).join('.');
    let reason = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path = joinPath(path, String((e.params as { missingProperty: string }).missingProperty));
      reason = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = joinPath(path, String((e.params as { additionalProperty: string }).additionalProperty));
      reason = 'is not a known field';
    } else if (typeof e.parentSchema?.['errorMessage'] === 'string') {
      reason = e.parentSchema['errorMessage'] as string;
    } else if (e.keyword === 'enum') {
      reason = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    }
    fields[path || '(document)'] ??= reason;
  }
  return fields;
}

export const joinPath = (a: string, b: string | number) => (a === '' ? String(b) : `${a}.${b}`);
const unescapePointer = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');
