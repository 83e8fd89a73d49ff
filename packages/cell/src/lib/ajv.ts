import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { TSchema, Static } from '@sinclair/typebox';
import type { FieldErrors } from '../http/errors.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = addFormatsImport.default;

/** One ajv for the whole cell: strict, all errors, no coercion, no silent removal of unknown fields. */
export const ajv = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false, verbose: true });
addFormats(ajv, ['date-time', 'uri', 'email']);
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

/** Turns ajv's errors into `{ field: reason }`, one reason per field, named by its JSON path. */
export function fieldErrors(errs: ErrorObject[] | null | undefined, root = ''): FieldErrors {
  const fields: FieldErrors = {};
  for (const e of errs ?? []) {
    let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    let reason = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path = join(path, String((e.params as { missingProperty: string }).missingProperty));
      reason = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = join(path, String((e.params as { additionalProperty: string }).additionalProperty));
      reason = 'is not a known field';
    } else if (typeof e.parentSchema?.['errorMessage'] === 'string') {
      reason = e.parentSchema['errorMessage'] as string;
    }
    const key = join(root, path) || '_body';
    // A union of constants fails once per branch ("must be equal to constant"); say what is allowed.
    const choices = e.keyword === 'anyOf' ? constChoices(e.parentSchema) : undefined;
    if (choices && !e.parentSchema?.['errorMessage']) fields[key] = `must be one of: ${choices.join(', ')}`;
    else fields[key] ??= reason;
  }
  return fields;
}

function constChoices(schema: Record<string, unknown> | undefined): string[] | undefined {
  const branches = schema?.['anyOf'];
  if (!Array.isArray(branches)) return undefined;
  const values = branches.map((b) => (b as { const?: unknown }).const);
  return values.every((v) => v !== undefined) ? values.map((v) => JSON.stringify(v)) : undefined;
}

const join = (a: string, b: string) => (a && b ? `${a}.${b}` : a || b);
