import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CellProcess } from '../support/cell-process.js';
import { type ApiClient, NETWORK } from '../support/client.js';
import { buildTestEchoImage, startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import {
  installTestEcho,
  loadManifestModule,
  testEchoManifest,
  writeCatalog,
  type ManifestModule,
  startStoreCell,
  stopStoreCell,
} from './store-helpers.js';

// Host ports a signed manifest asks for, against a real cell and engine: a port the cell uses
// (its WireGuard port, its API port, SSH/DNS/HTTP(S)) is refused before anything is created, and
// an allowed port is published on the address the cell chooses (127.0.0.1 here), not on 0.0.0.0.
const start = await startDockerEngine();

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** GET on the engine's API over its unix socket. */
function engineGet(socketPath: string, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('manifest host ports (real cell process and engine)', () => {
  if ('skip' in start) {
    it('needs a container engine', { skip: `NO CONTAINER ENGINE, host port e2e not run: ${start.skip}` }, () => {});
    return;
  }
  const engine: DockerEngine = start;
  let m: ManifestModule;
  let storeKey: { privateKey: KeyObject; publicKey: KeyObject };
  let good: any;
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  let version = 0;

  const publishWithHostPort = async (host: number, protocol: 'tcp' | 'udp' = 'tcp') => {
    const manifest = structuredClone(good);
    manifest.containers[0].ports = [...manifest.containers[0].ports, { container: 9000, protocol, host }];
    await writeCatalog(m, catalogDir, { version: ++version, key: storeKey.privateKey, manifest });
  };
  let cellId: string;
  /** This cell's containers only: the engine is shared with other tests running at the same time. */
  const containers = async () => {
    const filters = encodeURIComponent(JSON.stringify({ label: [`pic.cell=${cellId}`] }));
    return (await engineGet(engine.socketPath, `/containers/json?all=1&filters=${filters}`)) as any[];
  };

  before(async () => {
    m = await loadManifestModule();
    const digest = await buildTestEchoImage(engine.socketPath);
    storeKey = m.generateStoreKeyPair();
    good = await testEchoManifest(m, digest, storeKey.privateKey);
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-host-ports-'));
    await writeCatalog(m, catalogDir, { version: ++version, key: storeKey.privateKey, manifest: good });
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    cellId = (await api.get('/api/store')).body.engine.cell_id;
    assert.match(cellId, /^[0-9a-f]{12}$/);
  });

  after(async () => {
    try {
      await stopStoreCell(cell, api, [catalogDir]);
    } finally {
      await engine.stop();
    }
  });

  it("refuses the cell's own WireGuard and API ports at install, audited, creating nothing", async () => {
    const apiPort = Number(new URL(cell.url).port);
    assert.equal((await containers()).length, 0);
    for (const [host, protocol, what] of [
      [NETWORK.wireguard_port, 'udp', /WireGuard listen port/],
      [apiPort, 'tcp', /API port/],
    ] as const) {
      await publishWithHostPort(host, protocol);
      const res = await api.post('/api/store/install', { id: 'test-echo' });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'reserved_port');
      assert.match(res.body.error, what);
      assert.equal(typeof res.body.fields['containers.0.ports.1.host'], 'string', res.text);
      const entry = (await api.get('/api/audit?action=store.install&limit=1')).body.entries[0];
      assert.equal(entry.details.refusal, 'reserved_port', JSON.stringify(entry));
      assert.equal((await containers()).length, 0, 'nothing was created');
    }
  });

  it('refuses SSH, DNS and HTTP(S) ports already in the catalog (the manifest is invalid)', async () => {
    for (const host of [22, 53, 443]) {
      await publishWithHostPort(host);
      const store = await api.get('/api/store');
      const echo = store.body.services.find((s: any) => s.id === 'test-echo');
      assert.equal(echo.refusal?.code, 'invalid_manifest', JSON.stringify(echo));
      assert.match(echo.refusal.reason, /reserved for the cell's host/);
      const res = await api.post('/api/store/install', { id: 'test-echo' });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'invalid_manifest');
    }
  });

  it('publishes an allowed host port on 127.0.0.1 only', async () => {
    const port = await freePort();
    await publishWithHostPort(port);
    await installTestEcho(api);
    const server = (await containers()).find((c) => c.Names.some((n: string) => n.endsWith('-test-echo-server')));
    assert.ok(server, 'the container exists');
    const inspect = await engineGet(engine.socketPath, `/containers/${server.Id}/json`);
    const bindings = inspect.HostConfig.PortBindings['9000/tcp'] as Array<{ HostIp: string; HostPort: string }>;
    assert.ok(
      bindings.some((b) => b.HostPort === String(port)),
      JSON.stringify(bindings),
    );
    for (const b of Object.values(inspect.HostConfig.PortBindings).flat() as Array<{ HostIp: string }>) {
      assert.equal(
        b.HostIp,
        '127.0.0.1',
        `every binding is on 127.0.0.1: ${JSON.stringify(inspect.HostConfig.PortBindings)}`,
      );
    }
    // and the cell's WireGuard port may not move onto it later
    const moved = await api.put('/api/config', { network: { wireguard_port: port } });
    assert.equal(moved.status, 409, moved.text);
    assert.match(moved.body.fields['network.wireguard_port'], /installed service test-echo/);
    assert.equal((await api.get('/api/config')).body.config.network.wireguard_port, NETWORK.wireguard_port);
  });
});
