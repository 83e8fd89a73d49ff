import Router from '@koa/router';
import type { Context } from 'koa';
import type { CellDeps } from '../../deps.js';
import { errors, HttpError } from '../../http/errors.js';
import { rateLimitFailures } from '../../http/rate-limit.js';
import { requireRole, requireSession } from '../../http/guard.js';
import { type InputContext, validateBody, validateQuery } from '../../http/validate.js';
import { prepare } from '../../http/prepare.js';
import { transactional } from '../../http/transaction.js';
import { audited } from '../../http/audit.js';
import type { SessionData } from '../../http/session.js';
import { randomToken } from '../../lib/tokens.js';
import { passwordProblem } from '../../lib/password-strength.js';
import { presentUser } from '../users/presenter.js';
import { findUserById, listUsers } from '../users/service.js';
import { ChangePasswordBody, ListUsersQuery, LoginBody, ResetPasswordBody } from './schema.js';
import { authenticate, prepareNewPassword, resetPassword, storeNewPassword } from './service.js';

/** Starts a fresh session for `user` under a new id (no fixation) with its own CSRF token. */
export async function signIn(ctx: Context, user: { id: number; role: 'admin' | 'peer' }): Promise<string> {
  const session = ctx.session as unknown as SessionData & { regenerate(): Promise<void> };
  const csrf = randomToken(32);
  session.uid = user.id;
  session.role = user.role;
  session.csrf = csrf;
  await session.regenerate();
  return csrf;
}

const sessionKey = (ctx: Context): string | undefined =>
  (ctx.session as unknown as { externalKey?: string } | null)?.externalKey;

export function authRoutes(deps: CellDeps): Router {
  const { db, sessions, loginLimiter } = deps;
  const router = new Router({ prefix: '/api/auth' });
  const user = (ctx: Context) => ctx.state.user!;

  router.post(
    'auth.login',
    '/login',
    rateLimitFailures(loginLimiter),
    audited('user'),
    validateBody(LoginBody),
    async (ctx) => {
      const { username, password } = ctx.input;
      if (ctx.audit) {
        ctx.audit.target(username);
        ctx.audit.actAs(username);
      }
      const found = await authenticate(db, username, password, ctx.ip);
      if (!found) {
        ctx.countFailure();
        throw errors.unauthorized('invalid username or password');
      }
      const csrf = await signIn(ctx, found);
      ctx.body = {
        ok: true,
        user: { username: found.username, role: found.role, must_change_password: found.must_change_password === 1 },
        csrf_token: csrf,
      };
    },
  );

  router.post('auth.logout', '/logout', audited('session'), async (ctx) => {
    ctx.session = null;
    ctx.body = { ok: true };
  });

  router.get('/me', requireSession(sessions), async (ctx) => {
    const found = await findUserById(db, user(ctx).id);
    if (!found) throw errors.unauthorized();
    ctx.body = { ok: true, user: presentUser(found) };
  });

  router.get('/csrf-token', requireSession(sessions), async (ctx) => {
    const session = ctx.session as unknown as SessionData;
    session.csrf ??= randomToken(32);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ok: true, token: session.csrf };
  });

  router.post(
    'auth.change_password',
    '/change-password',
    rateLimitFailures(loginLimiter),
    requireSession(sessions),
    audited('user', (ctx) => ctx.state.user?.username),
    validateBody(ChangePasswordBody),
    prepare(async (ctx: InputContext<ChangePasswordBody>) => {
      // The new password's own rule first: refusing a weak one checks nothing, so it costs no attempt.
      const problem = await passwordProblem(ctx.input.new_password, [user(ctx).username]);
      if (problem) throw errors.validation({ new_password: problem }, `new password ${problem}`);
      // Hash outside the transaction: scrypt takes ~100 ms and the transaction holds the database.
      try {
        return await prepareNewPassword(db, user(ctx), ctx.input, ctx.ip);
      } catch (err) {
        // a refused hash (the queue was full) checked nothing: its reserved attempt is given back
        if (!(err instanceof HttpError && err.id === 'busy')) ctx.countFailure();
        throw err;
      }
    }),
    transactional(db),
    async (ctx) => {
      await storeNewPassword(ctx.trx, user(ctx).id, ctx.prepared);
      // Other devices signed in with the old password are signed out; this one stays.
      await sessions.destroyUserSessions(ctx.trx, user(ctx).id, sessionKey(ctx));
      ctx.body = { ok: true };
    },
  );

  router.post(
    'auth.reset_password',
    '/admin/reset-password',
    requireRole('admin'),
    audited('user'),
    validateBody(ResetPasswordBody),
    transactional(db),
    async (ctx) => {
      const { username } = ctx.input;
      ctx.audit.target(username);
      const { user: target, password } = await resetPassword(ctx.trx, user(ctx), username);
      await sessions.destroyUserSessions(ctx.trx, target.id);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { ok: true, username: target.username, password, must_change_password: true };
    },
  );

  router.get('/users', requireRole('admin'), validateQuery(ListUsersQuery, ['limit', 'offset']), async (ctx) => {
    const q = ctx.input;
    const limit = q.limit ?? 100;
    const offset = q.offset ?? 0;
    const { users, total } = await listUsers(db, { limit, offset, role: q.role });
    ctx.body = { ok: true, users: users.map(presentUser), total, limit, offset };
  });

  return router;
}
