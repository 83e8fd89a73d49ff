import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { CellDeps } from '../../deps.js';
import { errors } from '../../http/errors.js';
import { currentUser } from '../../http/guard.js';
import { prepare, type PreparedContext } from '../../http/prepare.js';
import { transactional } from '../../http/transaction.js';
import { audited } from '../../http/audit.js';
import { hashPassword } from '../../lib/password.js';
import { refreshKnownHosts } from '../config/service.js';
import { signIn } from '../auth/routes.js';
import { validateBodyBy } from '../../http/validate.js';
import {
  checkAdminPassword,
  completeSetup,
  describeStep,
  presentStatus,
  stepValidator,
  submitStep,
  type SetupProgress,
} from './service.js';

/**
 * The wizard is open to anyone only until the first admin exists. From then on it belongs to
 * that admin: the admin step signs its creator in, and later steps need that (or any admin) session.
 */
export function setupRoutes(deps: CellDeps): Router {
  const { db, setup } = deps;
  const router = new Router({ prefix: '/api/setup' });

  const refuseWhenComplete = async (_ctx: Context, next: Next) => {
    if (setup.isComplete()) throw errors.conflict('setup is already complete');
    await next();
  };
  // The step this request is for (`ctx.prepared`), taken before anything else: the body is validated against it.
  const requireWizardOwner = prepare(async (ctx: Context) => {
    const step = setup.current.step;
    if (step !== 'admin') {
      const user = await currentUser(ctx, deps.sessions);
      if (!user) throw errors.unauthorized('sign in as the admin created in the first step to continue setup');
      if (user.role !== 'admin') throw errors.forbidden('setup needs the admin role', 'wrong_role');
    }
    return step;
  });
  /** After completion the status is no longer public: it needs any signed-in user. */
  const publicUntilComplete = async (ctx: Context, next: Next) => {
    if (setup.isComplete() && !(await currentUser(ctx, deps.sessions))) throw errors.unauthorized();
    await next();
  };

  router.get('/status', publicUntilComplete, async (ctx) => {
    ctx.body = { ok: true, ...presentStatus(setup.current) };
  });

  router.get('/step', publicUntilComplete, requireWizardOwner, async (ctx) => {
    ctx.body = { ok: true, ...(await describeStep(db, setup.current)) };
  });

  router.post(
    'setup.step',
    '/step',
    audited('setup'),
    refuseWhenComplete,
    requireWizardOwner,
    validateBodyBy((ctx: PreparedContext<SetupProgress['step']>) => stepValidator(ctx.prepared)),
    // the admin's password must not be easy to guess (before the transaction: the check may load its dictionaries)
    async (ctx: PreparedContext<SetupProgress['step']>, next: Next) => {
      await checkAdminPassword(ctx.prepared, ctx.input);
      await next();
    },
    transactional(db),
    async (ctx) => {
      const step = ctx.prepared;
      ctx.audit.target(String(step));
      const hashAdmin = (password: string) => hashPassword(password, ctx.ip);
      const { progress, createdAdmin } = await submitStep(ctx.trx, step, ctx.input, hashAdmin);
      if (createdAdmin) {
        ctx.audit.actAs(createdAdmin.username);
        ctx.audit.note({ created_user: createdAdmin.username, role: 'admin' });
      }
      ctx.body = { ok: true, ...presentStatus(progress) };
      ctx.afterCommit(async () => {
        setup.committed(progress);
        await refreshKnownHosts(db, deps.knownHosts); // the identity and network steps name the cell
        if (createdAdmin) {
          const csrf = await signIn(ctx, createdAdmin);
          Object.assign(ctx.body as object, {
            user: { username: createdAdmin.username, role: createdAdmin.role },
            csrf_token: csrf,
          });
        }
      });
    },
  );

  router.post(
    'setup.complete',
    '/complete',
    audited('setup', () => 'complete'),
    refuseWhenComplete,
    requireWizardOwner,
    transactional(db),
    async (ctx) => {
      const progress = await completeSetup(ctx.trx);
      ctx.body = { ok: true, ...presentStatus(progress) };
      ctx.afterCommit(async () => {
        setup.committed(progress);
        await deps.peerNetwork.start();
      });
    },
  );

  return router;
}
