import type { Context, Next } from 'koa';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { AuditLog, AuditResult } from '../features/audit/service.js';
import type { Logger } from '../lib/logger.js';
import { asHttpError } from './error-handler.js';
import { isApiPath } from './guard.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Finds the name of the route a request would reach (routes are named after their audit action). */
export type RouteNamer = (method: string, path: string) => string | undefined;

/**
 * What a handler may say about its request's audit entry. Writes under /api/ get an AuditRecord;
 * every other request gets NO_AUDIT, whose methods do nothing, so handlers never test for it.
 */
export interface AuditNotes {
  /** Sets the entry's details: names and ids only, never secrets or whole bodies. The last note wins. */
  note(details: Record<string, unknown>): void;
  /** Names the entry's target type (what `audited()` does). */
  kind(targetType: string): void;
  /** Names the entry's target (a name, an id). */
  target(targetId: string): void;
  /** Who acted, when it is not the session's user (login, the wizard's first step). */
  actAs(actor: string): void;
  /** Writes the entry inside `trx` now (a change committed by the service's own transaction). */
  writeIn(trx: Transaction<Database>): void;
}

/** The AuditNotes of a request that is not audited (reads): stateless, shared, inert. */
export const NO_AUDIT: AuditNotes = Object.freeze({
  note: () => undefined,
  kind: () => undefined,
  target: () => undefined,
  actAs: () => undefined,
  writeIn: () => undefined,
});

/** What a route says about the change it makes; the audit middleware fills in who, where and how it ended. */
export class AuditRecord implements AuditNotes {
  action?: string;
  targetType?: string;
  targetId?: string;
  /** Names and ids only: never secrets, never request bodies wholesale. */
  details?: Record<string, unknown>;
  /** Who acted, when it is not the session's user (login, the wizard's first step). */
  actor?: string;
  written = false;

  constructor(
    private readonly ctx: Context,
    private readonly log: AuditLog,
    private readonly routeName: RouteNamer,
  ) {}

  private entry(result: AuditResult, extra?: Record<string, unknown>) {
    const ctx = this.ctx;
    // The action is the route's name, even when the request was refused before routing (401/403/429).
    const name =
      (ctx as unknown as { _matchedRouteName?: string })._matchedRouteName ?? this.routeName(ctx.method, ctx.path);
    return {
      actor: this.actor ?? ctx.state.user?.username ?? 'anonymous',
      action: this.action ?? name ?? `${ctx.method} ${ctx.path.slice(0, 200)}`,
      targetType: this.targetType ?? null,
      targetId: this.targetId ?? null,
      result,
      ip: ctx.ip || null,
      details: extra ? { ...this.details, ...extra } : this.details,
    };
  }

  note(details: Record<string, unknown>): void {
    this.details = details;
  }

  kind(targetType: string): void {
    this.targetType = targetType;
  }

  target(targetId: string): void {
    this.targetId = targetId;
  }

  actAs(actor: string): void {
    this.actor = actor;
  }

  /** Run (through ctx.commitWith) by `transactional` once the handler succeeded: the entry commits with the change. */
  writeIn(trx: Transaction<Database>): void {
    this.log.appendIn(trx, this.entry('ok'));
    this.written = true;
  }

  async writeAlone(result: AuditResult, extra?: Record<string, unknown>): Promise<void> {
    await this.log.append(this.entry(result, extra));
    this.written = true;
  }
}

function resultFor(status: number): AuditResult {
  if (status < 400) return 'ok';
  return status === 401 || status === 403 || status === 429 ? 'denied' : 'error';
}

/**
 * Every write to /api/* is audited here, whatever route handles it (or none): a new route cannot
 * forget. Routes name the action with `audited()`; a route inside `transactional` gets its entry
 * in the same transaction; anything that failed, was denied, or ran without a transaction is
 * recorded on its own afterwards.
 */
export function auditWrites(log: AuditLog, logger: Logger, routeName: RouteNamer) {
  return function auditRequest(ctx: Context, next: Next): Promise<void> {
    // reads pass straight through (no async wrapper: every request crosses this)
    if (!WRITE_METHODS.has(ctx.request.method) || !isApiPath(ctx.request.path)) return next();
    return auditWrite(ctx, next);
  };

  async function auditWrite(ctx: Context, next: Next): Promise<void> {
    const record = new AuditRecord(ctx, log, routeName);
    ctx.audit = record;
    // A route inside `transactional` commits its entry with its change (the transaction knows no audit).
    ctx.commitWith = [(trx) => record.writeIn(trx)];
    try {
      await next();
    } catch (err) {
      // The status and code the client gets: a library's 413 is payload_too_large here too, not internal.
      const known = asHttpError(err);
      const status = known?.status ?? 500;
      const code = known?.id ?? 'internal';
      await record
        .writeAlone(resultFor(status), { status, error: code })
        .catch((auditErr) => logger.error('audit append failed', { error: String(auditErr) }));
      throw err;
    }
    if (!record.written) {
      const status = ctx.status;
      await record
        .writeAlone(resultFor(status), status >= 400 ? { status } : undefined)
        .catch((auditErr) => logger.error('audit append failed after a completed change', { error: String(auditErr) }));
    }
  }
}

/**
 * Names what a route's write acts on, for its audit entry (the action itself is the route's name).
 * Put it early in the chain, so refusals by later steps carry the target too.
 */
export function audited(targetType: string, targetId?: (ctx: Context) => string | undefined) {
  return async function nameAuditTarget(ctx: Context, next: Next): Promise<void> {
    ctx.audit.kind(targetType);
    const id = targetId?.(ctx);
    if (id !== undefined) ctx.audit.target(id);
    await next();
  };
}
