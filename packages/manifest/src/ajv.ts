/**
 * The project's ajv setup and error shaping, shared by the manifest package and the cell (which
 * imports it as `@pic/manifest/ajv`, without loading the rest of this package).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { Static, TSchema } from '@sinclair/typebox';
import type { FieldErrors } from './errors.js';
import { isStrictDateTime } from './date-time.js';

export type { FieldErrors };
type FormatName = 'date-time' | 'uri' | 'email' | 'ipv4';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = addFormatsImport.default;

/** Strict, all errors, no coercion and no defaults: what is validated is exactly what was written. */
export function createAjv(formats: FormatName[]): Ajv {
  const instance = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false, verbose: true });
  addFormats(instance, formats);
  // ajv-formats' date-time takes a lowercase t/z and a leap second, which Date cannot represent.
  if (formats.includes('date-time')) instance.addFormat('date-time', { type: 'string', validate: isStrictDateTime });
  // A schema may carry a human message for its field; ajv itself ignores it.
  instance.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  return instance;
}

/** compile() for one ajv instance, each schema compiled once. */
export function schemaCompiler(instance: Ajv) {
  const compiled = new WeakMap<object, ValidateFunction>();
  return function compile<S extends TSchema>(schema: S): ValidateFunction<Static<S>> {
    let fn = compiled.get(schema);
    if (!fn) {
      fn = instance.compile(schema);
      compiled.set(schema, fn);
    }
    return fn as ValidateFunction<Static<S>>;
  };
}

export const ajv = createAjv(['date-time']);
export const compile = schemaCompiler(ajv);

export interface FieldErrorOptions {
  /** Prefix for every field path, e.g. "query" (none by default). */
  root?: string;
  /** The key for an error about the whole document. */
  whole?: string;
}

/** ajv's errors as `{ "containers.0.image": reason }`, one reason per field (the first). */
export function fieldErrors(
  errs: ErrorObject[] | null | undefined,
  { root = '', whole = '(document)' }: FieldErrorOptions = {},
): FieldErrors {
  const fields: FieldErrors = {};
  for (const e of errs ?? []) {
    let path = e.instancePath.replace(/^\//, '').split('/').map(unescapePointer).join('.');
    let reason = e.message ?? 'is invalid';
    const ownMessage =
      typeof e.parentSchema?.['errorMessage'] === 'string' ? (e.parentSchema['errorMessage'] as string) : undefined;
    if (e.keyword === 'required') {
      path = joinPath(path, String((e.params as { missingProperty: string }).missingProperty));
      reason = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = joinPath(path, String((e.params as { additionalProperty: string }).additionalProperty));
      reason = 'is not a known field';
    } else if (ownMessage) {
      reason = ownMessage;
    } else if (e.keyword === 'enum') {
      reason = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    }
    const key = (root && path ? `${root}.${path}` : root || path) || whole;
    // A union of constants fails once per branch ("must be equal to constant"); say what is allowed.
    const choices = e.keyword === 'anyOf' && !ownMessage ? constChoices(e.parentSchema) : undefined;
    if (choices) fields[key] = `must be one of: ${choices.join(', ')}`;
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

export const joinPath = (a: string, b: string | number) => (a === '' ? String(b) : `${a}.${b}`);
const unescapePointer = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');
