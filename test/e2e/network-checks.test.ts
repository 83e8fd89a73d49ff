/**
 * GET /api/ntp/status and the on-demand checks of /api/network/* on a real cell process: a URL the
 * cell reaches, one refused, one that never answers (cut at its time limit), bad input refused in
 * the error shape, and the handshake list with the tunnel off. (The cell-resolver and handshake
 * checks over a live tunnel are in reach.test.ts.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';

describe('NTP status and network checks', () => {
  let ready: ReadyCell;
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];

  before(async () => {
    ready = await startReadyCell();
    // accepts connections and never answers: the reach check must give up at its limit
    silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await ready?.cell.destroy();
  });

  it('NTP: synchronised or not from chrony / timesyncd, else unknown with the reason', async () => {
    const res = await ready.admin.get('/api/ntp/status');
    assert.equal(res.status, 200, res.text);
    const ntp = res.body.ntp;
    assert.ok(['synchronized', 'unsynchronized', 'unknown'].includes(ntp.state), JSON.stringify(ntp));
    if (ntp.state === 'unknown') {
      assert.equal(ntp.synchronized, null);
      assert.ok(typeof ntp.reason === 'string' && ntp.reason.length > 0, JSON.stringify(ntp));
    } else {
      assert.equal(ntp.synchronized, ntp.state === 'synchronized');
      assert.ok(['chrony', 'systemd-timesyncd'].includes(ntp.source));
    }
  });

  it('reach: a URL that answers, one refused, one silent (cut at its time limit)', async () => {
    const okRes = await ready.admin.get(`/api/network/reach?url=${encodeURIComponent(`${ready.cell.url}/health`)}`);
    assert.equal(okRes.status, 200, okRes.text);
    assert.equal(okRes.body.check.success, true);
    assert.equal(okRes.body.check.status, 200);

    // a port that was just free: nothing listens there
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const refused = await ready.admin.get(
      `/api/network/reach?url=${encodeURIComponent(`http://127.0.0.1:${closedPort}/`)}`,
    );
    assert.equal(refused.body.check.success, false);
    assert.equal(refused.body.check.error, 'ECONNREFUSED');

    const started = Date.now();
    const slow = await ready.admin.get(
      `/api/network/reach?url=${encodeURIComponent(`http://127.0.0.1:${silentPort}/`)}&timeout_ms=300`,
    );
    assert.equal(slow.status, 200, slow.text);
    assert.equal(slow.body.check.success, false);
    assert.equal(slow.body.check.error, 'no answer within 300 ms');
    assert.ok(Date.now() - started < 3000, 'the check kept its limit');
  });

  it('refuses bad input in the error shape', async () => {
    for (const q of [
      'url=file%3A%2F%2F%2Fetc%2Fpasswd',
      'url=not-a-url',
      'url=http%3A%2F%2Fu%3Ap%40example.org%2F',
      'url=http%3A%2F%2Fx%2F&timeout_ms=999999',
    ]) {
      const res = await ready.admin.get(`/api/network/reach?${q}`);
      assert.equal(res.status, 400, `${q}: ${res.text}`);
      assert.equal(res.body.code, 'validation_failed');
    }
    for (const q of ['name=a%0Ab.example.org', 'name=%22x%22.example.org', 'name=x.org&via=elsewhere']) {
      const res = await ready.admin.get(`/api/network/resolve?${q}`);
      assert.equal(res.status, 400, `${q}: ${res.text}`);
      assert.equal(res.body.code, 'validation_failed');
    }
  });

  it("with the tunnel off: the cell's resolver is not running (409), no handshakes, reach routes refuse", async () => {
    const res = await ready.admin.get('/api/network/resolve?name=home.example.org');
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.code, 'conflict');
    const hs = await ready.admin.get('/api/network/handshakes');
    assert.equal(hs.status, 200, hs.text);
    assert.equal(hs.body.running, false);
    assert.deepEqual(hs.body.peers, []);
    const renew = await ready.admin.post('/api/caddy/cert-renew', {});
    assert.equal(renew.status, 409, renew.text);
    const junk = await ready.admin.post('/api/caddy/cert-renew', { days: 1 });
    assert.equal(junk.status, 400, junk.text);
    assert.equal(junk.body.code, 'validation_failed');
    const certStatus = await ready.admin.get('/api/caddy/cert-status');
    assert.equal(certStatus.status, 200, certStatus.text);
    assert.equal(certStatus.body.certificate.serial, null, 'nothing issued while Caddy does not run');
    const dnsBad = await ready.admin.post('/api/dns/records', {
      name: 'x.home.example.org',
      type: 'TXT',
      value: 'a\nb',
    });
    assert.equal(dnsBad.status, 400, dnsBad.text);
    assert.equal(dnsBad.body.fields.value, 'must be printable ASCII: no line breaks, tabs or control characters');
    const status = (await ready.admin.get('/api/status')).body.subsystems;
    assert.equal(status.caddy.state, 'not_configured');
    assert.equal(status.dns.state, 'not_configured');
  });
});
