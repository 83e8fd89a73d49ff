import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import type { ApiClient } from '../support/client.js';
import { buildTestEchoImage, startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import {
  installTestEcho,
  engineView,
  eventually,
  loadManifestModule,
  startStoreCell,
  testEchoManifest,
  writeCatalog,
} from './store-helpers.js';
import { freePort } from './services-helpers.js';

// After a reboot the engine starts the services' containers before the cell has brought up the
// WireGuard address they publish on; they fail to bind and the engine does not try again. A
// starting cell therefore starts every installed service's container that is not running. Here a
// container stopped behind the cell's back while the cell was down stands in for that failed start.
const start = await startDockerEngine();

/** POST on the engine's API over its unix socket (the cell's own client is not used to break things). */
function enginePost(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('installed services come back when the cell starts (real cell process and engine)', () => {
  if ('skip' in start) {
    it('needs a container engine', { skip: `NO CONTAINER ENGINE, service revival not run: ${start.skip}` }, () => {});
    return;
  }
  const engine: DockerEngine = start;
  let cell: CellProcess;
  let api: ApiClient;
  let catalogDir: string;
  let cellYaml: string;

  before(async () => {
    const m = await loadManifestModule();
    const digest = await buildTestEchoImage(engine.socketPath);
    const storeKey = m.generateStoreKeyPair();
    const manifest = await testEchoManifest(m, digest, storeKey.privateKey);
    // a port published at a fixed number, on the addresses the cell chooses
    manifest.containers[0].ports.push({ container: 9000, protocol: 'tcp', host: await freePort() });
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-revive-'));
    await writeCatalog(m, catalogDir, { version: 1, key: storeKey.privateKey, manifest });
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    cellYaml = readFileSync(join(cell.dataDir, 'cell.yaml'), 'utf8');
  });

  after(async () => {
    try {
      if (cell) {
        await api.post('/api/store/remove', { id: 'test-echo', purge: true }).catch(() => undefined);
        await cell.destroy();
        rmSync(cell.dataDir, { recursive: true, force: true }); // a restarted cell does not own its data dir
      }
      if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
    } finally {
      await engine.stop();
    }
  });

  it('starts a stopped container of an installed service, audits it, and the service answers again', async () => {
    await installTestEcho(api);
    const cellId = (await api.get('/api/store')).body.engine.cell_id as string;
    const view = await engineView(engine.socketPath, cellId);
    const server = (await view.listContainers()).find((c) => c.name.endsWith('-test-echo-server'));
    assert.ok(server?.running, 'the service runs after install');

    await cell.stop();
    assert.equal(await enginePost(engine.socketPath, `/containers/${server.name}/stop?t=2`), 204);
    const stopped = (await view.listContainers()).find((c) => c.name === server.name);
    assert.equal(stopped?.running, false, 'stopped while the cell was down');

    cell = await startCellProcess({ dataDir: cell.dataDir, timeoutMs: 30_000 });
    api = api.clone(cell.url);
    await eventually('the container to run again', async () =>
      (await view.listContainers()).find((c) => c.name === server.name)?.running ? true : undefined,
    );
    const entry = await eventually('the revival in the audit log', async () => {
      const entries = (await api.get('/api/audit?action=services.revive&limit=1')).body.entries;
      return entries?.[0];
    });
    assert.equal(entry.actor, 'system');
    assert.equal(entry.result, 'ok');
    assert.deepEqual(entry.details.started, [server.name]);
    await eventually('test-echo to answer', async () =>
      (await api.get('/api/test-echo/echo?hello=again')).status === 200 ? true : undefined,
    );

    // a start with everything running changes nothing and writes nothing
    await cell.stop();
    cell = await startCellProcess({ dataDir: cell.dataDir, timeoutMs: 30_000 });
    api = api.clone(cell.url);
    await eventually('test-echo to answer after a plain restart', async () =>
      (await api.get('/api/test-echo/echo?hello=again')).status === 200 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1000)); // revival runs in the background after start
    const revivals = (await api.get('/api/audit?action=services.revive')).body.entries;
    assert.equal(revivals.length, 1, JSON.stringify(revivals));
  });
  it('says when its ports are published on addresses the cell no longer chooses, and what to do', async () => {
    const status = async () => (await api.get('/api/services/catalog/test-echo/status')).body;
    assert.equal((await status()).publish, null, 'published where the cell chooses: nothing to say');

    // The addresses change under the installed service (as when the tunnel comes up after the
    // install, or the VPN subnet changes): the engine keeps the ones it bound at creation.
    await cell.stop();
    const moved = cellYaml.replace('store:\n', 'store:\n  publish_address: [127.0.0.1, 127.0.0.2]\n');
    assert.notEqual(moved, cellYaml);
    cell = await startCellProcess({ dataDir: cell.dataDir, cellYaml: moved, timeoutMs: 30_000 });
    api = api.clone(cell.url);
    const stale = await eventually('the service to run', async () => {
      const s = await status();
      return s.healthy ? s : undefined;
    });
    assert.deepEqual(stale.publish?.published, ['127.0.0.1'], JSON.stringify(stale));
    assert.deepEqual(stale.publish?.wanted, ['127.0.0.1', '127.0.0.2']);
    assert.match(stale.publish?.advice, /remove it \(its data is kept\) and install it again/);

    await cell.stop();
    cell = await startCellProcess({ dataDir: cell.dataDir, cellYaml, timeoutMs: 30_000 });
    api = api.clone(cell.url);
    await eventually('the service to run', async () => ((await status()).healthy ? true : undefined));
    assert.equal((await status()).publish, null, 'back where the cell chooses');
  });
});
