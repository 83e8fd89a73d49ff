import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { routeKey, routerDispatch } from './dispatch.js';

/** A few routers shaped like the cell's: prefixed, unprefixed, and one matching by pattern. */
function routers(): Router[] {
  const status = new Router();
  status.get('/api/status', (ctx) => {
    ctx.body = 'status';
  });
  const peers = new Router({ prefix: '/api/peers' });
  peers.get('/', (ctx) => {
    ctx.body = 'list';
  });
  peers.post('/', (ctx) => {
    ctx.body = 'add';
  });
  peers.put('/:id', (ctx) => {
    ctx.body = `put ${ctx.params['id']}`;
  });
  const health = new Router();
  health.get('/health', (ctx) => {
    ctx.body = 'health';
  });
  const mounted = new Router();
  mounted.all(/^\/api\/([a-z]+)\/(.*)$/, (ctx, next) => {
    if (!ctx.path.startsWith('/api/echo/')) return next();
    ctx.body = 'echo';
  });
  return [health, status, peers, mounted];
}

function serve(app: Koa): Promise<{ server: Server; port: number }> {
  const server = createServer(app.callback());
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

function call(port: number, method: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(`${res.statusCode} allow=${res.headers['allow'] ?? '-'} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('routerDispatch', () => {
  let plain: { server: Server; port: number };
  let dispatched: { server: Server; port: number };
  before(async () => {
    const a = new Koa();
    for (const r of routers()) a.use(r.routes()).use(r.allowedMethods({ throw: false }));
    plain = await serve(a);
    const b = new Koa();
    b.use(routerDispatch(routers()));
    dispatched = await serve(b);
  });
  after(() => {
    plain.server.close();
    dispatched.server.close();
  });

  it('keys a path by its first segment (under /api/, the one after it), lowercased', () => {
    assert.equal(routeKey('/api/peers/12'), '/api/peers');
    assert.equal(routeKey('/API/Status'), '/api/status');
    assert.equal(routeKey('/health'), '/health');
    assert.equal(routeKey('/'), '/');
  });

  it('answers every request exactly as the routers used one after another do', async () => {
    const requests: Array<[string, string]> = [
      ['GET', '/api/status'],
      ['GET', '/API/STATUS'],
      ['POST', '/api/status'], // 405 with Allow
      ['OPTIONS', '/api/peers'],
      ['GET', '/api/peers'],
      ['PUT', '/api/peers/7'],
      ['DELETE', '/api/peers/7'],
      ['PROPFIND', '/api/peers'], // 501
      ['GET', '/api/echo/anything'], // only the pattern router matches
      ['GET', '/api/nothing/here'],
      ['GET', '/health'],
      ['GET', '/nowhere'],
    ];
    for (const [method, path] of requests) {
      const expected = await call(plain.port, method, path);
      assert.equal(await call(dispatched.port, method, path), expected, `${method} ${path}`);
    }
    // and the answers are the interesting ones, not 404 everywhere
    assert.match(await call(dispatched.port, 'POST', '/api/status'), /^405 allow=HEAD, GET/);
    assert.match(await call(dispatched.port, 'PUT', '/api/peers/7'), /^200 .* put 7$/);
    assert.match(await call(dispatched.port, 'GET', '/api/echo/x'), /^200 .* echo$/);
  });
});
