import type { Context, Next } from 'koa';
import { errors } from './errors.js';
import type { SessionUser } from './context.js';
import { safeEqual } from '../lib/tokens.js';
import { sessionAccount, type AccountRow, type SessionData } from './session.js';

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

/**
 * Whether the account behind a session may still use it. Checked on every request against the row
 * read with the session itself, so a change (disabled, role changed, peer disabled or expired)
 * takes effect on the very next request; nothing is cached across requests.
 */
export function accountOpen(account: AccountRow, sessionRole: SessionData['role'], nowIso = new Date().toISOString()): boolean {
  if (account.disabled === 1 || account.role !== sessionRole) return false;
  // A peer's login ends the moment its peer is disabled or expires, not when the expiry job next runs.
  if (account.role === 'peer' && (account.peer_enabled === 0 || (account.peer_expires_at !== null && account.peer_expires_at <= nowIso))) {
    return false;
  }
  return true;
}

/** Loads the signed-in user from the session (once per request); undefined when there is none. */
export async function currentUser(ctx: Context): Promise<SessionUser | undefined> {
  if (ctx.state.user) return ctx.state.user;
  const data = ctx.session;
  if (!data?.uid) return undefined;
  const account = await sessionAccount(ctx, data.uid);
  if (!account || !accountOpen(account, data.role)) {
    ctx.session = null; // the account changed under this session: end it
    return undefined;
  }
  ctx.state.user = { id: account.id, username: account.username, role: account.role, mustChangePassword: account.must_change_password === 1 };
  return ctx.state.user;
}

export interface GuardOptions {
  isSetupComplete: () => boolean;
}

/**
 * The API's front door, in order: setup gate → session (401) → role (403) → a password change
 * that is due (403) → CSRF (403).
 * Routes declare their role too (`requireRole`), but this guard is what makes an
 * undeclared route safe by default.
 */
export function guardApi({ isSetupComplete }: GuardOptions) {
  return async function guard(ctx: Context, next: Next): Promise<void> {
    const access = accessFor(ctx.path);
    if (access === 'public' || access === 'setup') return next();
    // Before setup completes, only the wizard and signing in (to resume it) are open.
    if (!isSetupComplete() && !apiPath(ctx.path).startsWith('/api/auth/')) {
      throw errors.forbidden('setup not complete', 'setup_incomplete');
    }
    const user = await currentUser(ctx);
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
  const expected = ctx.session?.csrf;
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
export function requireSession() {
  return async function assertSession(ctx: Context, next: Next): Promise<void> {
    if (!(await currentUser(ctx))) throw errors.unauthorized();
    await next();
  };
}
