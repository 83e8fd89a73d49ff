import type { Context, Next } from 'koa';
import { errors } from './errors.js';
import type { SessionUser } from './context.js';
import { safeEqual } from '../lib/tokens.js';
import type { SessionAccount, SessionData, SqliteSessionStore } from './session.js';

export const CSRF_HEADER = 'X-CSRF-Token';
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Which role a path needs. One table, so a new route cannot forget its access rule. */
export type Access = 'public' | 'setup' | 'session' | 'admin' | 'peer';

/**
 * The router matches paths case-insensitively, so every decision made on a path here must too:
 * otherwise `/API/STATUS` would reach a route while skipping the checks meant for `/api/status`.
 */
export const apiPath = (path: string): string => path.toLowerCase();
const API_PREFIX = /^\/api\//i;
/** Same answer as `apiPath(path).startsWith('/api/')`, without a lowercased copy (several middleware ask, on every request). */
export const isApiPath = (path: string): boolean => API_PREFIX.test(path);

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
  if (!WRITE_METHODS.has(method)) return false;
  const path = apiPath(rawPath);
  return path.startsWith('/api/') && !path.startsWith('/api/auth/') && !path.startsWith('/api/setup/');
}

const NOT_CACHED = Symbol('account not in memory');

/**
 * The signed-in user when it can be told without a query: already found for this request, or
 * the session's account is in the store's memory. NOT_CACHED when the account must be loaded.
 */
function userInMemory(ctx: Context, sessions: SqliteSessionStore): SessionUser | undefined | typeof NOT_CACHED {
  if (ctx.state.user) return ctx.state.user;
  const data = ctx.session as SessionData | null;
  if (!data?.uid) return undefined;
  const account = sessions.accountInMemory(data.uid);
  return account ? admitAccount(ctx, data, account) : NOT_CACHED;
}

/** Loads the signed-in user from the session (once per request); undefined when there is none. */
export async function currentUser(ctx: Context, sessions: SqliteSessionStore): Promise<SessionUser | undefined> {
  const known = userInMemory(ctx, sessions);
  return known === NOT_CACHED ? loadUser(ctx, sessions) : known;
}

/** After userInMemory() answered NOT_CACHED: the session names a user whose account must be read. */
async function loadUser(ctx: Context, sessions: SqliteSessionStore): Promise<SessionUser | undefined> {
  const data = ctx.session as SessionData & { uid: number };
  return admitAccount(ctx, data, await sessions.account(data.uid));
}

/** Whether the session's account still lets it in; when not, the session ends here. */
function admitAccount(ctx: Context, data: SessionData, account: SessionAccount | undefined): SessionUser | undefined {
  // A peer's login also ends the moment its peer is disabled or expires, not when the expiry job next runs.
  const peerClosed =
    account?.role === 'peer' &&
    (account.peerDisabled || (account.peerExpiresAtMs !== null && account.peerExpiresAtMs <= Date.now()));
  if (!account || account.disabled || account.role !== data.role || peerClosed) {
    ctx.session = null; // the account changed under this session: end it
    return undefined;
  }
  ctx.state.user = {
    id: account.id,
    username: account.username,
    role: account.role,
    mustChangePassword: account.mustChangePassword,
  };
  return ctx.state.user;
}

export interface GuardOptions {
  sessions: SqliteSessionStore;
  isSetupComplete: () => boolean;
}

/**
 * The API's front door, in order: setup gate → session (401) → role (403) → a password change
 * that is due (403) → CSRF (403).
 * Routes declare their role too (`requireRole`), but this guard is what makes an
 * undeclared route safe by default.
 */
export function guardApi({ sessions, isSetupComplete }: GuardOptions) {
  return function guard(ctx: Context, next: Next): Promise<void> {
    const path = ctx.request.path;
    const access = accessFor(path);
    if (access === 'public' || access === 'setup') return next();
    // Before setup completes, only the wizard and signing in (to resume it) are open.
    if (!isSetupComplete() && !apiPath(path).startsWith('/api/auth/')) {
      throw errors.forbidden('setup not complete', 'setup_incomplete');
    }
    // Synchronous while the account is in memory (almost always): no promise per request for it.
    const known = userInMemory(ctx, sessions);
    if (known === NOT_CACHED) return loadUser(ctx, sessions).then((user) => admit(ctx, next, access, user));
    return admit(ctx, next, access, known);
  };
}

function admit(
  ctx: Context,
  next: Next,
  access: 'session' | 'admin' | 'peer',
  user: SessionUser | undefined,
): Promise<void> {
  if (!user) throw errors.unauthorized();
  if (access !== 'session' && user.role !== access) {
    throw errors.forbidden(`this needs the ${access} role`, 'wrong_role');
  }
  // A password an admin reset (and someone else saw) opens nothing but /api/auth/*, where it can be changed.
  if (user.mustChangePassword && access !== 'session') {
    throw errors.forbidden('change your password first (POST /api/auth/change-password)', 'password_change_required');
  }
  if (needsCsrf(ctx.request.method, ctx.request.path)) checkCsrf(ctx);
  return next();
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
  return function assertRole(ctx: Context, next: Next): Promise<void> {
    const user = ctx.state.user;
    if (!user) throw errors.unauthorized();
    if (!roles.includes(user.role)) throw errors.forbidden(`this needs the ${roles.join(' or ')} role`, 'wrong_role');
    return next();
  };
}

/** For routes open to any signed-in user (the guard's 'session' access). */
export function requireSession(sessions: SqliteSessionStore) {
  return async function assertSession(ctx: Context, next: Next): Promise<void> {
    if (!(await currentUser(ctx, sessions))) throw errors.unauthorized();
    await next();
  };
}
