import type { Context, Next } from 'koa';
import type { Db } from '../db/database.js';
import { errors } from './errors.js';
import type { SessionUser } from './context.js';
import { safeEqual } from '../lib/tokens.js';
import type { SessionData } from './session.js';

export const CSRF_HEADER = 'X-CSRF-Token';
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Which role a path needs. One table, so a new route cannot forget its access rule. */
export type Access = 'public' | 'setup' | 'session' | 'admin' | 'peer';

/**
 * The router matches paths case-insensitively, so every decision made on a path here must too:
 * otherwise `/API/STATUS` would reach a route while skipping the checks meant for `/api/status`.
 */
export const apiPath = (path: string): string => path.toLowerCase();
export const isApiPath = (path: string): boolean => apiPath(path).startsWith('/api/');

export function accessFor(rawPath: string): Access {
  const path = apiPath(rawPath);
  if (!path.startsWith('/api/') && path !== '/api') return 'public';
  if (path === '/api/auth/login' || path === '/api/auth/logout') return 'public';
  if (path.startsWith('/api/setup/')) return 'setup';
  if (path.startsWith('/api/auth/')) return 'session';
  if (path.startsWith('/api/peer/') || path === '/api/peer') return 'peer';
  return 'admin';
}

export function needsCsrf(method: string, rawPath: string): boolean {
  const path = apiPath(rawPath);
  return WRITE_METHODS.has(method) && path.startsWith('/api/') && !path.startsWith('/api/auth/') && !path.startsWith('/api/setup/');
}

/** Loads the signed-in user from the session (once per request); undefined when there is none. */
export async function currentUser(ctx: Context, db: Db): Promise<SessionUser | undefined> {
  if (ctx.state.user) return ctx.state.user;
  const data = ctx.session as (SessionData & { isNew?: boolean }) | null;
  if (!data?.uid) return undefined;
  // A peer's login also ends the moment its peer is disabled or expires, not when the expiry job next runs.
  const user = await db
    .selectFrom('users')
    .leftJoin('peers', 'peers.user_id', 'users.id')
    .select(['users.id', 'users.username', 'users.role', 'users.disabled', 'users.must_change_password', 'peers.enabled as peer_enabled', 'peers.expires_at as peer_expires_at'])
    .where('users.id', '=', data.uid)
    .executeTakeFirst();
  const peerClosed = user?.role === 'peer' && (user.peer_enabled === 0 || (user.peer_expires_at != null && user.peer_expires_at <= new Date().toISOString()));
  if (!user || user.disabled === 1 || user.role !== data.role || peerClosed) {
    ctx.session = null; // the account changed under this session: end it
    return undefined;
  }
  ctx.state.user = { id: user.id, username: user.username, role: user.role, mustChangePassword: user.must_change_password === 1 };
  return ctx.state.user;
}

export interface GuardOptions {
  db: Db;
  isSetupComplete: () => boolean;
}

/**
 * The API's front door, in order: setup gate → session (401) → role (403) → a password change
 * that is due (403) → CSRF (403).
 * Routes declare their role too (`requireRole`), but this guard is what makes an
 * undeclared route safe by default.
 */
export function guardApi({ db, isSetupComplete }: GuardOptions) {
  return async function guard(ctx: Context, next: Next): Promise<void> {
    const access = accessFor(ctx.path);
    if (access === 'public' || access === 'setup') return next();
    // Before setup completes, only the wizard and signing in (to resume it) are open.
    if (!isSetupComplete() && !apiPath(ctx.path).startsWith('/api/auth/')) {
      throw errors.forbidden('setup not complete', 'setup_incomplete');
    }
    const user = await currentUser(ctx, db);
    if (!user) throw errors.unauthorized();
    if (access !== 'session' && user.role !== access) {
      throw errors.forbidden(`this needs the ${access} role`, 'wrong_role');
    }
    // A password an admin reset (and someone else saw) opens nothing but /api/auth/*, where it can be changed.
    if (user.mustChangePassword && access !== 'session') {
      throw errors.forbidden('change your password first (POST /api/auth/change-password)', 'password_change_required');
    }
    if (needsCsrf(ctx.method, ctx.path)) checkCsrf(ctx);
    await next();
  };
}

export function checkCsrf(ctx: Context): void {
  const sent = ctx.get(CSRF_HEADER);
  const expected = (ctx.session as SessionData | null)?.csrf;
  if (!sent || !expected || !safeEqual(sent, expected)) {
    throw errors.forbidden('missing or invalid CSRF token (header X-CSRF-Token from GET /api/auth/csrf-token)', 'csrf');
  }
}

/** Route-level statement of who may call it (the guard has already enforced it; this keeps routes honest). */
export function requireRole(...roles: Array<'admin' | 'peer'>) {
  return async function assertRole(ctx: Context, next: Next): Promise<void> {
    const user = ctx.state.user;
    if (!user) throw errors.unauthorized();
    if (!roles.includes(user.role)) throw errors.forbidden(`this needs the ${roles.join(' or ')} role`, 'wrong_role');
    await next();
  };
}

/** For routes open to any signed-in user (the guard's 'session' access). */
export function requireSession(db: Db) {
  return async function assertSession(ctx: Context, next: Next): Promise<void> {
    if (!(await currentUser(ctx, db))) throw errors.unauthorized();
    await next();
  };
}
