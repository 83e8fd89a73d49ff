import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, ADMIN, IDENTITY, NETWORK } from '../support/client.js';

describe('setup wizard (real cell process)', () => {
  let cell: CellProcess;
  let api: ApiClient;
  before(async () => {
    cell = await startCellProcess();
    api = new ApiClient(cell.url);
  });
  after(async () => cell.destroy());

  it('starts at the admin step and keeps the rest of /api closed', async () => {
    const status = await api.get('/api/setup/status');
    assert.equal(status.status, 200);
    assert.deepEqual(status.body, {
      ok: true,
      complete: false,
      step: 'admin',
      steps: ['admin', 'identity', 'network', 'review'],
      completed_at: null,
    });
    const closed = await api.get('/api/status');
    assert.equal(closed.status, 403);
    assert.equal(closed.body.error, 'setup not complete');
    assert.equal(closed.body.ok, false);
  });

  it('walks every step, refusing bad input without advancing', async () => {
    const short = await api.post('/api/setup/step', { username: 'admin', password: 'too-short' });
    assert.equal(short.status, 400);
    assert.ok(short.body.fields.password);
    assert.equal((await api.get('/api/setup/status')).body.step, 'admin');
    // Long enough, but only spaces, or a common password: refused, naming the field.
    for (const [password, why] of [
      [' '.repeat(12), /only spaces/],
      ['\t \u00a0 \u2003'.repeat(4), /only spaces/],
      ['password1234', /too easy to guess/],
      ['qwertyuiop12', /too easy to guess/],
      ['aaaaaaaaaaaa', /too easy to guess/],
      ['admin-admin-admin', /too easy to guess/],
    ] as const) {
      const weak = await api.post('/api/setup/step', { username: 'admin', password });
      assert.equal(weak.status, 400, `${JSON.stringify(password)}: ${weak.text}`);
      assert.equal(weak.body.code, 'validation_failed');
      assert.match(weak.body.fields.password, why, JSON.stringify(password));
      assert.deepEqual(Object.keys(weak.body.fields), ['password']);
    }
    assert.equal((await api.get('/api/setup/status')).body.step, 'admin', 'no weak admin was created');

    const admin = await api.post('/api/setup/step', ADMIN);
    assert.equal(admin.status, 200, admin.text);
    assert.equal(admin.body.step, 'identity');
    assert.deepEqual(admin.body.user, { username: 'admin', role: 'admin' });
    assert.ok(!admin.text.includes(ADMIN.password), 'the password is never echoed');

    // A stranger without the admin's session cannot continue the wizard.
    const stranger = new ApiClient(cell.url);
    assert.equal((await stranger.post('/api/setup/step', IDENTITY)).status, 401);

    const badIdentity = await api.post('/api/setup/step', { cell_name: 'Bad_Name', domain: 'ex ample' });
    assert.equal(badIdentity.status, 400);
    assert.ok(badIdentity.body.fields.cell_name);
    assert.ok(badIdentity.body.fields.domain);
    assert.equal((await api.post('/api/setup/step', IDENTITY)).status, 200);

    const step = await api.get('/api/setup/step');
    assert.equal(step.body.step, 'network');
    assert.equal(step.body.data.wireguard_port, 51820);

    for (const [body, field] of [
      [{ ...NETWORK, subnet: '8.8.8.0/24' }, 'subnet'],
      [{ ...NETWORK, subnet: '10.0.0.0/8' }, 'subnet'],
      [{ ...NETWORK, subnet: '10.8.0.0/30' }, 'subnet'],
      [{ ...NETWORK, wireguard_port: 70000 }, 'wireguard_port'],
      [{ ...NETWORK, endpoint: 'no-port' }, 'endpoint'],
    ] as const) {
      const res = await api.post('/api/setup/step', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok(res.body.fields[field], `${field} named for ${JSON.stringify(body)}`);
    }
    assert.equal((await api.post('/api/setup/step', NETWORK)).status, 200);

    const early = await api.post('/api/setup/complete');
    assert.equal(early.status, 409, 'complete is refused before the review step');
    assert.equal((await api.post('/api/setup/step', {})).status, 200);
    const done = await api.post('/api/setup/complete');
    assert.equal(done.status, 200);
    assert.equal(done.body.complete, true);
  });

  it('answers 409 to every setup write once complete', async () => {
    assert.equal((await api.post('/api/setup/step', ADMIN)).status, 409);
    assert.equal((await api.post('/api/setup/complete')).status, 409);
    const anon = new ApiClient(cell.url);
    assert.equal((await anon.post('/api/setup/step', ADMIN)).status, 409);
    assert.equal((await anon.get('/api/status')).status, 401);
  });
});
