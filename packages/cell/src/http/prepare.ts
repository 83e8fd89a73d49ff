import type { Context, Next } from 'koa';

declare module 'koa' {
  interface DefaultContext {
    /** What the route's `prepare` step computed before its transaction; typed by that step. */
    prepared: unknown;
  }
}

/**
 * A chain step typed by what it puts on `ctx.prepared`. A method's signature (checked
 * bivariantly, like `Validator`), so it also sits in a `Step[]` chain.
 */
export type Preparer<C, T> = { step(ctx: C & { prepared: T }, next: Next): Promise<void> }['step'];

/** The context of the steps after `prepare(fn)`: `ctx.prepared` is what `fn` returned. */
export type PreparedContext<T, C = Context> = C & { prepared: T };

/**
 * Work a route does before its transaction opens (key generation, password hashing, loading and
 * checking what the write acts on): its result lands on `ctx.prepared`, and the router infers its
 * type for the handler, as it does `ctx.input` from the validator. No cast of ctx.state.
 */
export function prepare<T, C extends Context = Context>(fn: (ctx: C) => Promise<T>): Preparer<C, T> {
  return async function prepareStep(ctx, next) {
    ctx.prepared = await fn(ctx);
    await next();
  };
}
