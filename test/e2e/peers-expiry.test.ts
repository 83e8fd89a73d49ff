import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertError } from '../support/expect.js';
import type { ReadyCell } from '../support/ready-cell.js';
import { sleep, startPeersCell } from './peers-helpers.js';

const PASSWORD = 'expiring peer password';
/** The cell's expiry job runs every 30 s; give it one full period and some slack. */
const EXPIRY_JOB_MS = 30_000;

describe('peer expiry (real cell process)', () => {
  let ready: ReadyCell;
  before(async () => {
    ready = await startPeersCell();
  });
  after(async () => ready.cell.destroy());

  const liveKeys = async (): Promise<string[]> => {
    const res = await ready.admin.get('/api/wireguard/status');
    assert.equal(res.status, 200, res.text);
    return (res.body.peers as Array<{ public_key: string }>).map((p) => p.public_key);
  };

  it('an expired peer cannot sign in at once, leaves the live peers and loses its session; extending restores it', async () => {
    const expiresAt = new Date(Date.now() + 8_000); // room for a loaded machine: create, then sign in before it
    const created = await ready.admin.post('/api/peers', {
      name: 'soon',
      password: PASSWORD,
      expires_at: expiresAt.toISOString(),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.peer.expires_at, expiresAt.toISOString());
    assert.equal(created.body.peer.expired, false);
    assert.equal(created.body.peer.active, true);
    const key = created.body.peer.public_key as string;
    const stays = await ready.admin.post('/api/peers', {
      name: 'stays',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    });
    assert.equal(stays.status, 201);

    const session = ready.anon();
    assert.equal((await session.login('soon', PASSWORD)).status, 200, 'signs in before expiry');
    assert.ok((await liveKeys()).includes(key), 'live before expiry');

    await sleep(expiresAt.getTime() - Date.now() + 300);
    // the login check compares with the clock: no waiting for the expiry job
    assertError(await ready.anon().post('/api/auth/login', { username: 'soon', password: PASSWORD }), 401, {
      code: 'unauthorized',
      context: 'login right after expiry',
    });
    // and its open session ends on its very next request, not when the job runs
    assertError(await session.get('/api/peer/me'), 401, {
      code: 'unauthorized',
      context: 'open session right after expiry',
    });
    const shown = (await ready.admin.get('/api/peers/soon')).body.peer;
    assert.equal(shown.expired, true);
    assert.equal(shown.active, false);
    assert.equal(shown.enabled, true, 'expiry is not the same as disabling');

    // the expiry job takes it off the interface and ends its sessions
    const deadline = Date.now() + EXPIRY_JOB_MS + 10_000;
    let gone = false;
    let sessionEnded = false;
    while (Date.now() < deadline && !(gone && sessionEnded)) {
      gone = !(await liveKeys()).includes(key);
      sessionEnded = (await session.get('/api/peer/me')).status === 401;
      if (!(gone && sessionEnded)) await sleep(1_000);
    }
    assert.ok(gone, `the expired peer left the live peers within ${EXPIRY_JOB_MS / 1000} s`);
    assert.ok(sessionEnded, 'its open session ended');
    assert.ok((await liveKeys()).includes(stays.body.peer.public_key), 'a peer that has not expired stays live');
    assert.equal((await ready.admin.get('/api/peers/soon/config')).status, 200, 'the admin still has its config');

    // the admin extends it: it signs in again and is live again
    assertError(
      await ready.admin.put('/api/peers/soon', { expires_at: new Date(Date.now() - 1_000).toISOString() }),
      400,
      { fields: ['expires_at'] },
    );
    const extended = await ready.admin.put('/api/peers/soon', {
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    });
    assert.equal(extended.status, 200, extended.text);
    assert.equal(extended.body.peer.active, true);
    assert.equal((await ready.anon().login('soon', PASSWORD)).status, 200, 'signs in after the extension');
    assert.ok((await liveKeys()).includes(key), 'live again');

    const never = await ready.admin.put('/api/peers/soon', { expires_at: null });
    assert.equal(never.body.peer.expires_at, null);
    assert.equal(never.body.peer.expired, false);
  });
});
