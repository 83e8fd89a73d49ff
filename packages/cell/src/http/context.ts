import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import type { AuditNotes } from './audit.js';

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
    /** The audit entry of this write (POST/PUT/PATCH/DELETE under /api/); NO_AUDIT, inert, otherwise. */
    audit: AuditNotes;
    /** Run by `transactional` inside the transaction just before it commits (the audit entry). */
    commitWith: Array<(trx: Transaction<Database>) => void> | undefined;
  }
}
