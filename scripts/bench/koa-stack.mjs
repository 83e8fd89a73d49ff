// The ceiling for the core bench: what the cell's chosen dependencies cost on their own. A Koa
// app with koa-session over an in-memory store (one signed-in session), one @koa/router route,
// the cell's seven response headers and an error-handling middleware, answering the body the real
// /api/status answered (BODY_FILE). No database, no guard logic, no rate-limit bookkeeping: a
// cell built on these parts cannot be faster than this. Started like the cell (its node flags,
// --optimize-for-size set at run time). Listens on PORT (0: any) and prints "stack listening on <url>".
// WITHOUT_SESSION=1 leaves koa-session out (the route then checks the cookie itself), to show what
// that one part costs.
import { setFlagsFromString } from 'node:v8';
setFlagsFromString('--optimize-for-size'); // as the cell's main.ts

const { createRequire } = await import('node:module');
const { createServer } = await import('node:http');
const { readFileSync } = await import('node:fs');
const { join } = await import('node:path');
const { pathToFileURL } = await import('node:url');

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(join(root, 'packages', 'cell', 'package.json'));
// the function or class each package exports (koa-session's CommonJS build nests it under default)
const load = async (name) => {
  const mod = (await import(pathToFileURL(require.resolve(name)).href)).default;
  return typeof mod === 'function' ? mod : mod.default;
};
const [Koa, Router, session] = await Promise.all([load('koa'), load('@koa/router'), load('koa-session')]);

const { SESSION_ID } = await import('./koa-stack-session.mjs');
const body = readFileSync(process.env.BODY_FILE, 'utf8');
const data = { uid: 1, role: 'admin', csrf: 'c'.repeat(43), _expire: Date.now() + 86_400_000, _maxAge: 7_200_000 };
const store = {
  async get(key) {
    return key === SESSION_ID ? data : undefined;
  },
  async set() {},
  async destroy() {},
};

const app = new Koa();
app.use(async (ctx, next) => {
  try {
    await next();
  } catch {
    ctx.status = 500;
  }
});
// set as the cell sets them: on Node's response, not through Koa's ctx.set
app.use((ctx, next) => {
  const res = ctx.res;
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('RateLimit-Limit', '10000000');
  res.setHeader('RateLimit-Remaining', '9999999');
  res.setHeader('RateLimit-Reset', '60');
  return next();
});
const withSession = process.env.WITHOUT_SESSION !== '1';
if (withSession)
  app.use(
    session(
      { key: 'pic.sid', store, maxAge: 7_200_000, renew: true, httpOnly: true, sameSite: 'strict', signed: false },
      app,
    ),
  );
const router = new Router();
router.get('/api/status', (ctx) => {
  const uid = withSession ? ctx.session.uid : ctx.cookies.get('pic.sid') === SESSION_ID ? data.uid : undefined;
  if (uid !== 1) ctx.throw(401);
  ctx.res.setHeader('Content-Type', 'application/json; charset=utf-8');
  ctx.body = body;
});
app.use(router.routes());
app.use(router.allowedMethods());

const server = createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`stack listening on http://127.0.0.1:${server.address().port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
