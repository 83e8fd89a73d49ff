import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import type { ServiceManifest } from '@pic/manifest';
import { errorHandler } from '../../http/error-handler.js';
import { silentLogger } from '../../lib/logger.js';
import { demoManifest } from '../store/fixtures.test-support.js';
import { ServiceMounts } from './mounts.js';

// Route mounting on a live Koa server: the same router stays in the app while services come and go.
describe('ServiceMounts', () => {
  let server: Server;
  let base: string;
  const mounts = new ServiceMounts();
  const builds: string[] = [];
  const known = new Set(['demo', 'other', 'email']);

  /** A stand-in for buildServiceRouter: one GET route per manifest route, answering with its id. */
  const builder = (id: string, manifest: ServiceManifest) => {
    builds.push(id);
    const router = new Router({ prefix: `/api/${id}` });
    for (const r of manifest.routes ?? [])
      router.register(
        r.path,
        [r.method],
        (ctx) => {
          ctx.body = { service: id, route: r.path, params: ctx.params };
        },
        { name: `${id}.${r.handler}` },
      );
    return router;
  };

  const get = async (path: string, method = 'GET') => {
    const res = await fetch(base + path, { method });
    return {
      status: res.status,
      body: (await res.json().catch(() => undefined)) as any,
      allow: res.headers.get('allow'),
    };
  };

  before(async () => {
    mounts.setHandlers(builder, async (ctx, id) => {
      if (!known.has(id)) return false;
      ctx.body = { service: id, installed: mounts.isMounted(id) };
      return true;
    });
    const app = new Koa();
    app.use(errorHandler(silentLogger));
    // A feature router before it, as in the app: its paths never reach the mounts.
    const feature = new Router();
    feature.get('/api/status', (ctx) => {
      ctx.body = { feature: true };
    });
    const stable = mounts.router();
    for (const r of [feature, stable]) {
      app.use(r.routes());
      app.use(r.allowedMethods({ throw: false }));
    }
    server = createServer(app.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('answers 404 for every route of a service that is not mounted, and its status says so', async () => {
    assert.equal((await get('/api/demo/items')).status, 404);
    assert.equal((await get('/api/demo/items/1')).status, 404);
    assert.equal((await get('/api/demo')).status, 404);
    const status = await get('/api/demo/status');
    assert.equal(status.status, 200);
    assert.deepEqual(status.body, { service: 'demo', installed: false });
    assert.equal((await get('/api/unknown/status')).status, 404, 'status only for services the cell knows');
    assert.equal((await get('/api/status')).body.feature, true, 'feature routes are untouched');
    assert.equal((await get('/api/status/x', 'DELETE')).status, 404);
    const wrong = await get('/api/status', 'DELETE');
    assert.equal(wrong.status, 405, 'a feature route keeps its 405: the catch-all claims no methods');
    assert.equal(wrong.allow, 'HEAD, GET');
  });

  it('mounting makes the routes answer at once, with parameters, and other methods get 405', async () => {
    const manifest = {
      ...demoManifest('demo'),
      routes: [
        {
          method: 'GET',
          path: '/items',
          handler: 'proxy',
          description: 'x',
          proxy: { container: 'app', port: 8080, path: '/items' },
        },
        {
          method: 'GET',
          path: '/items/:item',
          handler: 'proxy',
          description: 'x',
          proxy: { container: 'app', port: 8080, path: '/items/:item' },
        },
      ],
    } as ServiceManifest;
    mounts.mount('demo', manifest);
    const list = await get('/api/demo/items');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { service: 'demo', route: '/items', params: {} });
    assert.deepEqual((await get('/api/demo/items/42')).body.params, { item: '42' });
    assert.equal((await get('/api/DEMO/Items')).status, 200, 'case-insensitive like every route');
    const wrong = await get('/api/demo/items', 'DELETE');
    assert.equal(wrong.status, 405);
    assert.match(wrong.allow ?? '', /GET/);
    assert.equal((await get('/api/demo/nothing')).status, 404);
    assert.deepEqual((await get('/api/demo/status')).body, { service: 'demo', installed: true });
    assert.equal((await get('/api/other/items')).status, 404, 'another service is unaffected');
  });

  it('unmounting takes them away again; remounting builds a fresh router', async () => {
    const before = builds.length;
    mounts.unmount('demo');
    assert.equal((await get('/api/demo/items')).status, 404);
    assert.equal((await get('/api/demo/items', 'DELETE')).status, 404, 'not even a 405: the path does not exist');
    assert.deepEqual(mounts.mounted(), []);
    mounts.mount('demo', demoManifest('demo'));
    assert.equal((await get('/api/demo/items')).status, 200);
    assert.equal((await get('/api/demo/items')).status, 200);
    assert.equal(builds.length, before + 1, 'built once per mount, then reused');
  });
});
