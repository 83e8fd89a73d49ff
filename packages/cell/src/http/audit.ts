import type { Context, Next } from 'koa';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { AuditLog, AuditResult } from '../features/audit/service.js';
import type { Logger } from '../lib/logger.js';
import { HttpError } from './errors.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What a route says about the change it makes; the audit middleware fills in who, where and how it ended. */
export class AuditRecord {
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
  ) {}

  private entry(result: AuditResult, extra?: Record<string, unknown>) {
    const ctx = this.ctx;
    const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute;
    return {
      actor: this.actor ?? ctx.state.user?.username ?? 'anonymous',
      action: this.action ?? `${ctx.method} ${(route ?? ctx.path).slice(0, 200)}`,
      targetType: this.targetType ?? null,
      targetId: this.targetId ?? null,
      result,
      ip: ctx.ip || null,
      details: extra ? { ...this.details, ...extra } : this.details,
    };
  }

  /** Called by `transactional` once the handler succeeded: the entry commits with the change. */
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
export function auditWrites(log: AuditLog, logger: Logger) {
  return async function auditRequest(ctx: Context, next: Next): Promise<void> {
    if (!WRITE_METHODS.has(ctx.method) || !ctx.path.startsWith('/api/')) return next();
    const record = new AuditRecord(ctx, log);
    ctx.audit = record;
    try {
      await next();
    } catch (err) {
      const status = err instanceof HttpError ? err.status : ((err as { status?: number }).status ?? 500);
      const code = err instanceof HttpError ? err.id : 'internal';
      await record.writeAlone(resultFor(status), { status, error: code }).catch((auditErr) =>
        logger.error('audit append failed', { error: String(auditErr) }),
      );
      throw err;
    }
    if (!record.written) {
      const status = ctx.status;
      await record
        .writeAlone(resultFor(status), status >= 400 ? { status } : undefined)
        .catch((auditErr) => logger.error('audit append failed after a completed change', { error: String(auditErr) }));
    }
  };
}

/**
 * Names the action a route performs (and its target, when the path tells it), for its audit entry.
 * Put it early in the chain, so refusals by later steps are recorded under this name too.
 */
export function audited(action: string, targetType?: string, targetId?: (ctx: Context) => string | undefined) {
  return async function nameAuditAction(ctx: Context, next: Next): Promise<void> {
    if (ctx.audit) {
      ctx.audit.action = action;
      if (targetType) ctx.audit.targetType = targetType;
      const id = targetId?.(ctx);
      if (id !== undefined) ctx.audit.targetId = id;
    }
    await next();
  };
}
