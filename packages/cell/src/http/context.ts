import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { AuditRecord } from './audit.js';

/** Who is asking: set by the session guard, read by handlers. */
export interface SessionUser {
  id: number;
  username: string;
  role: 'admin' | 'peer';
  /** Set after an admin reset: only /api/auth/* answers until the user picks a new password. */
  mustChangePassword: boolean;
}

declare module 'koa' {
  interface DefaultState {
    user?: SessionUser;
  }
  interface DefaultContext {
    /** Validated request input (body or query), set by `validateBody`/`validateQuery`. */
    input: unknown;
    /** The open transaction, set by `transactional`. */
    trx: Transaction<Database>;
    /** Runs `fn` once the transaction opened by `transactional` has committed. */
    afterCommit(fn: () => Promise<void> | void): void;
    /** The audit entry of this write (set on POST/PUT/PATCH/DELETE under /api/ only). */
    audit: AuditRecord | undefined;
  }
}
