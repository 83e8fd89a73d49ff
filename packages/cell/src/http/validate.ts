import type { Context, Next } from 'koa';
import type { Static, TSchema } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import { compile, fieldErrors } from '../lib/ajv.js';
import { errors, type FieldErrors } from './errors.js';

/** Extra checks a JSON schema cannot express (CIDR ranges, …): return the fields that fail. */
export type SemanticCheck<T> = (input: T) => FieldErrors;

/**
 * Validates the JSON body against `schema`; on success the value lands on `ctx.input`.
 * Handlers read `ctx.input`, never `ctx.request.body`.
 */
export function validateBody<S extends TSchema>(schema: S, check?: SemanticCheck<Static<S>>): Validator<Static<S>> {
  const validator = lazyValidator(schema);
  return async function validateRequestBody(ctx: Context, next: Next): Promise<void> {
    const validate = validator();
    const body = (ctx.request as { body?: unknown }).body;
    // A body-less request validates as {} so "required" errors name the missing fields.
    const input = body === undefined ? {} : body;
    if (!validate(input)) {
      // Report every bad field at once: the extra checks run too, on whatever fields they can read.
      throw errors.validation({ ...semanticOfUnchecked(check, input), ...fieldErrors(validate.errors) });
    }
    const semantic = check?.(input);
    if (semantic && Object.keys(semantic).length > 0) throw errors.validation(semantic);
    ctx.input = input;
    await next();
  };
}

/**
 * Compiled on first use: an idle cell holds no generated code for the dozens of routes nobody
 * has called yet (compiling one takes about a millisecond). Every schema is exercised by the tests.
 */
function lazyValidator<S extends TSchema>(schema: S): () => ValidateFunction<Static<S>> {
  let validate: ValidateFunction<Static<S>> | undefined;
  return () => (validate ??= compile(schema));
}

/** Runs the extra checks on input the schema refused; they skip fields of the wrong type, and any throw is ignored. */
function semanticOfUnchecked(check: SemanticCheck<never> | undefined, input: unknown): FieldErrors {
  if (!check || typeof input !== 'object' || input === null || Array.isArray(input)) return {};
  try {
    return check(input as never);
  } catch {
    return {};
  }
}

/**
 * Validates the body against a schema chosen per request (the setup wizard's current step).
 * `pick` returns undefined when there is nothing to validate against (the caller refuses later).
 */
export function validateBodyBy<C extends Context = Context>(
  pick: (ctx: C) => { schema: TSchema; check?: SemanticCheck<never> } | undefined,
): { validate(ctx: C, next: Next): Promise<void> }['validate'] {
  return async function validateRequestBodyBy(ctx: C, next: Next): Promise<void> {
    const chosen = pick(ctx);
    if (!chosen) return next();
    // The check is written for its own schema's type, and only runs on input that schema accepted.
    return validateBody(chosen.schema, chosen.check as SemanticCheck<unknown> | undefined)(ctx, next);
  };
}

/** Validates the query string. Values arrive as strings; the schema's own types are applied after numeric coercion of `numeric` keys. */
export function validateQuery<S extends TSchema>(schema: S, numeric: string[] = []): Validator<Static<S>> {
  const validator = lazyValidator(schema);
  return async function validateRequestQuery(ctx: Context, next: Next): Promise<void> {
    const validate = validator();
    const query: Record<string, unknown> = {};
    const unsafe: FieldErrors = {};
    for (const [key, value] of Object.entries(ctx.query)) {
      if (Array.isArray(value)) throw errors.validation({ [key]: 'must be given once' });
      const coerced = numeric.includes(key) ? queryInteger(value) : value;
      if (coerced === UNSAFE) unsafe[key] = SAFE_RANGE;
      query[key] = coerced;
    }
    // Past 2^53 a number is rounded (9007199254740993 reads as …992) or beyond SQLite's integers:
    // refused here, for every paginated route, besides the schema's own limits.
    const valid = validate(query);
    if (!valid || Object.keys(unsafe).length > 0) {
      throw errors.validation({ ...(valid ? {} : fieldErrors(validate.errors)), ...unsafe });
    }
    ctx.input = query;
    await next();
  };
}

const UNSAFE = Symbol('unsafe integer');
const SAFE_RANGE = `must be an integer from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`;

/** Digits as a number when exactly representable (UNSAFE when not); other text stays text for the schema to refuse. */
function queryInteger(value: string | undefined): string | number | undefined | typeof UNSAFE {
  if (value === undefined || !/^-?\d+$/.test(value)) return value;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : UNSAFE;
}

export type Input<S extends TSchema> = Static<S>;

/**
 * The context of a handler after `validateBody(S)` or `validateQuery(S)`: `ctx.input` is the
 * validated value, typed from the schema (outline's APIContext<T>). The router infers it from the
 * chain, so handlers read `ctx.input.id` with no cast.
 */
export type InputContext<T> = Context & { input: T };

/**
 * A validation middleware, typed by what it puts on `ctx.input`. Its parameter is checked
 * bivariantly (a method's signature), so it also sits in a plain `Middleware[]` chain.
 */
export type Validator<T> = { validate(ctx: InputContext<T>, next: Next): Promise<void> }['validate'];

/**
 * One step of a chain kept in an array (a manifest's mounted routes) rather than written in a
 * router call: a method's signature, so steps typed by their input (validators, handlers taking
 * an InputContext) fit in it.
 */
export type Step = { step(ctx: Context, next: Next): unknown }['step'];
