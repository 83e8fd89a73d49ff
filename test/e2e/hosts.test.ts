import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCellProcess, runCellExpectingFailure } from '../support/cell-process.js';
import { ADMIN, ApiClient, IDENTITY } from '../support/client.js';
import { startReadyCell } from '../support/ready-cell.js';
import { assertError } from '../support/expect.js';
import { withCellDb } from '../support/db.js';
import { rawRequest } from '../support/raw-http.js';

const REBIND = 'rebind.attacker.example';

const portOf = (url: string) => new URL(url).port;
const users = (dataDir: string): number =>
  withCellDb(dataDir, (db) => db.prepare('SELECT count(*) AS n FROM users').get().n as number);

describe('Host and Origin checks against DNS rebinding (real cell process)', () => {
  it('a foreign Host cannot run the setup wizard, nor reach anything else, before setup', async () => {
    const cell = await startCellProcess();
    try {
      const port = portOf(cell.url);
      const foreign = { host: `${REBIND}:${port}` };
      const step = await rawRequest(cell.url, 'POST', '/api/setup/step', { headers: foreign, json: ADMIN });
      assertError(step, 421, { code: 'unknown_host', context: 'wizard under a rebound name' });
      for (const path of ['/api/setup/status', '/health', '/']) {
        const res = await rawRequest(cell.url, 'GET', path, { headers: foreign });
        assertError(res, 421, { code: 'unknown_host', context: path });
      }
      // Look-alikes of the known names are foreign too.
      for (const host of [`localhost.${REBIND}`, `127.0.0.1.${REBIND}`, `evil-localhost:${port}`]) {
        const res = await rawRequest(cell.url, 'GET', '/health', { headers: { host } });
        assertError(res, 421, { code: 'unknown_host', context: host });
      }
      assert.equal(users(cell.dataDir), 0, 'no admin was created');
      const audited = withCellDb(
        cell.dataDir,
        (db) =>
          db.prepare("SELECT count(*) AS n FROM audit_log WHERE json_extract(entry, '$.details.status') = 421").get().n,
      );
      assert.ok(audited >= 1, 'the refused wizard write is audited');

      // The names the cell is known by on this machine, on any port.
      const known = [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, 'localhost.'];
      for (const host of known) {
        const res = await rawRequest(cell.url, 'GET', '/api/setup/status', { headers: { host } });
        assert.equal(res.status, 200, `${host}: ${res.text}`);
      }
      // A foreign Origin cannot drive the wizard even with a known Host.
      const fromPage = await rawRequest(cell.url, 'POST', '/api/setup/step', {
        headers: { host: `127.0.0.1:${port}`, origin: `http://${REBIND}` },
        json: ADMIN,
      });
      assertError(fromPage, 403, { code: 'foreign_origin' });
      assert.equal(users(cell.dataDir), 0);
    } finally {
      await cell.destroy();
    }
  });

  it('after setup: the domain and its subdomains, the WireGuard address and cell.yaml names are known', async () => {
    const cellYaml = 'http:\n  allowed_hosts: [cell.lan.example, 192.168.7.20, "::ffff:c0a8:714"]\n';
    const { cell, admin } = await startReadyCell({ cellYaml });
    try {
      const port = portOf(cell.url);
      const status = (host: string) =>
        rawRequest(cell.url, 'GET', '/api/status', { headers: { host, cookie: admin.cookieHeader() } });
      for (const host of [
        IDENTITY.domain,
        `console.${IDENTITY.domain}:${port}`,
        '10.8.0.1',
        `10.8.0.1:${port}`,
        'cell.lan.example',
        '192.168.7.20:8080',
        '[::ffff:c0a8:714]',
      ]) {
        const res = await status(host);
        assert.equal(res.status, 200, `${host}: ${res.text}`);
      }
      const foreign = [
        `evil${IDENTITY.domain}`,
        `${IDENTITY.domain}.${REBIND}`,
        '10.8.0.2',
        'lan.example',
        '192.168.7.9',
      ];
      for (const host of foreign) {
        assertError(await status(host), 421, { code: 'unknown_host', context: host });
      }

      // A foreign Origin on PUT /api/config with a matching Host, a valid session and CSRF token.
      const headers = { host: `127.0.0.1:${port}`, cookie: admin.cookieHeader(), 'x-csrf-token': admin.csrf! };
      const before = await admin.get('/api/config');
      const change = { identity: { cell_name: 'rebound' } };
      const foreignOrigins = [
        'null',
        `http://${REBIND}`,
        `http://${REBIND}:${port}`,
        `http://${IDENTITY.domain}.x.example`,
      ];
      for (const origin of foreignOrigins) {
        const res = await rawRequest(cell.url, 'PUT', '/api/config', { headers: { ...headers, origin }, json: change });
        assertError(res, 403, { code: 'foreign_origin', context: origin });
      }
      assert.deepEqual((await admin.get('/api/config')).body, before.body, 'nothing changed');
      const audit = await admin.get('/api/audit?action=config.update');
      const denied = audit.body.entries.filter((e: { result: string }) => e.result === 'denied');
      assert.ok(denied.length >= foreignOrigins.length, 'the refused writes are audited');
      // Its own pages may write: an Origin naming the cell.
      for (const origin of [`http://127.0.0.1:${port}`, `https://console.${IDENTITY.domain}`]) {
        const json = { identity: { cell_name: 'home' } };
        const res = await rawRequest(cell.url, 'PUT', '/api/config', { headers: { ...headers, origin }, json });
        assert.equal(res.status, 200, `${origin}: ${res.text}`);
      }
      // Sign-in from a foreign page is refused too.
      const login = await rawRequest(cell.url, 'POST', '/api/auth/login', {
        headers: { host: `127.0.0.1:${port}`, origin: `http://${REBIND}` },
        json: ADMIN,
      });
      assertError(login, 403, { code: 'foreign_origin', context: 'login' });

      // A new domain is known at once, and the old one no longer.
      const renamed = await admin.put('/api/config', { identity: { domain: 'cell.example.net' } });
      assert.equal(renamed.status, 200, renamed.text);
      assert.equal((await status('www.cell.example.net')).status, 200);
      assertError(await status(IDENTITY.domain), 421, { code: 'unknown_host', context: 'the old domain' });
    } finally {
      await cell.destroy();
    }
  });

  it('refuses an http.allowed_hosts entry that is no host name, naming it', async () => {
    const cellYaml = 'http:\n  allowed_hosts: [ok.example, "evil.example/path"]\n';
    const { code, output } = await runCellExpectingFailure({ cellYaml });
    assert.notEqual(code, 0);
    assert.match(output, /http\.allowed_hosts\.1/);
    assert.match(output, /evil\.example\/path/);
    // and a client that sends no Origin (curl, scripts) is not affected: the control case
    const cell = await startCellProcess({ cellYaml: 'http:\n  allowed_hosts: [ok.example]\n' });
    try {
      assert.equal((await new ApiClient(cell.url).get('/api/setup/status')).status, 200);
    } finally {
      await cell.destroy();
    }
  });
});
