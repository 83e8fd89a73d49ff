/**
 * CaddyService with the real Caddy (Debian's caddy) on 127.0.0.1 instead of a tunnel address: it
 * starts Caddy detached, loads the config through the admin socket, proxies the domain to a stand-in
 * cell and a subdomain to a stand-in container once the web routes change, and the renewal check
 * renews only inside the window, after which the new certificate is served. Skips without caddy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import { loadConfig } from '../../config.js';
import { silentLogger } from '../../lib/logger.js';
import { processCommandLine } from '../../lib/detached-process.js';
import { writeIdentity } from '../config/service.js';
import { openVault } from '../vault/vault.js';
import { findExecutable } from '../wireguard/commands.js';
import { CaddyService } from './service.js';

const DAY = 86_400_000;
const DOMAIN = 'home.example.org';
const skip = findExecutable('caddy') ? undefined : "'caddy' is not installed (Debian package caddy)";
if (skip) process.stderr.write(`[caddy service] SKIPPING: ${skip}\n`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function serve(text: string): Promise<Server> {
  const server = createServer((_req, res) => res.end(text));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
const portOf = (s: Server) => (s.address() as AddressInfo).port;

describe('CaddyService with the real Caddy', { skip }, () => {
  let t: TempDatabase;
  let caddy: CaddyService;
  let cell: Server;
  let echo: Server;
  let port: number;
  let ca: string;
  const routes: Array<{ id: string; subdomain: string; dial: string }> = [];

  /** GET https://<name>/ through Caddy; resolves with the status, body and the served certificate's serial. */
  const get = (name: string) =>
    new Promise<{ status: number; body: string; serial: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, servername: name, headers: { host: name }, ca, agent: false },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => {
            const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.().serialNumber ?? '';
            resolve({ status: res.statusCode ?? 0, body, serial: serial.toLowerCase() });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });

  before(async () => {
    t = await openTempDatabase('pic-caddy-service-');
    await writeIdentity(t.database.db, { cell_name: 'home', domain: DOMAIN });
    const vault = await openVault({ dataDir: t.dir, db: t.database.db, logger: silentLogger });
    cell = await serve('the cell');
    echo = await serve('the echo service');
    const probe = await serve('');
    port = portOf(probe);
    await new Promise((r) => probe.close(r));
    const config = loadConfig({ PIC_DATA_DIR: t.dir, PIC_WIREGUARD_MODE: 'userspace', PIC_REACH_MODE: 'auto' });
    config.reach.httpsPort = port;
    caddy = new CaddyService({
      config,
      db: t.database.db,
      vault,
      logger: silentLogger,
      web: { webRoutes: async () => routes },
      tunnel: async () => ({ address: '127.0.0.1' }),
      cellUpstream: () => `127.0.0.1:${portOf(cell)}`,
    });
    caddy.start();
    for (let i = 0; i < 200 && caddy.status().state !== 'ok'; i++) await sleep(50);
    assert.equal(caddy.status().state, 'ok', JSON.stringify(caddy.status()));
    ca = await caddy.certificate.ca.certificatePem();
  });

  after(async () => {
    const pid = caddy?.pid();
    await caddy?.stop();
    if (pid) {
      assert.ok(processCommandLine(pid), 'Caddy outlives stop() (it is the next cell that adopts it)');
      process.kill(pid, 'SIGTERM');
    }
    cell?.close();
    echo?.close();
    await t?.remove();
  });

  it('serves the domain from the cell, over TLS with the CA-issued certificate', async () => {
    const res = await get(DOMAIN);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'the cell');
    assert.equal(res.serial.replace(/^0+/, ''), String((await caddy.certStatus())['serial']).replace(/^0+/, ''));
  });

  it('adds a subdomain when the web routes change, and drops it again', async () => {
    assert.equal((await get(`echo.${DOMAIN}`)).status, 404);
    routes.push({ id: 'echo', subdomain: 'echo', dial: `127.0.0.1:${portOf(echo)}` });
    await caddy.converge();
    assert.deepEqual(await get(`echo.${DOMAIN}`).then((r) => [r.status, r.body]), [200, 'the echo service']);
    routes.pop();
    await caddy.converge();
    assert.equal((await get(`echo.${DOMAIN}`)).status, 404);
  });

  it('the renewal check renews only inside the window, and the new certificate is served', async () => {
    const before = (await caddy.certStatus())['serial'] as string;
    assert.equal(await caddy.renewIfDue(Date.now() + 30 * DAY), false, '60 days left: nothing to do');
    assert.equal((await caddy.certStatus())['serial'], before);
    assert.equal(await caddy.renewIfDue(Date.now() + 61 * DAY), true, 'under 30 days left: renewed');
    const after = (await caddy.certStatus())['serial'] as string;
    assert.notEqual(after, before);
    assert.equal((await get(DOMAIN)).serial.replace(/^0+/, ''), after.replace(/^0+/, ''));
  });
});
