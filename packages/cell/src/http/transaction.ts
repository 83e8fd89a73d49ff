import type { Context, Next } from 'koa';
import type { Db } from '../db/database.js';

/**
 * Opens one transaction around the rest of the chain and exposes it as `ctx.trx`.
 * Everything the handler writes commits together or not at all; an error rolls back.
 * Inside, use `ctx.trx` only: touching `db` there would wait on the transaction forever.
 * Work that must follow a successful commit (caches, sessions) goes in `ctx.afterCommit(fn)`; work
 * that must commit with the change goes in `ctx.commitWith` (set by earlier middleware).
 */
export function transactional(db: Db) {
  return async function inTransaction(ctx: Context, next: Next): Promise<void> {
    const hooks: Array<() => Promise<void> | void> = [];
    ctx.afterCommit = (fn) => void hooks.push(fn);
    await db.transaction().execute(async (trx) => {
      ctx.trx = trx;
      try {
        await next();
        // Work that joins the change before it commits (the audit middleware's entry): both commit, or neither.
        for (const join of ctx.commitWith ?? []) join(trx);
      } finally {
        ctx.trx = undefined as never;
      }
    });
    for (const hook of hooks) await hook();
  };
}
