import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, ADMIN, IDENTITY, NETWORK } from '../support/client.js';
import { insertUser } from '../support/db.js';
import { assertError } from '../support/expect.js';

const PEER = { username: 'pat', password: 'peer password 1234', role: 'peer' as const };
const SECOND_ADMIN = { username: 'root2', password: 'second admin password', role: 'admin' as const };

describe('CSRF on and off, and roles both ways (real cell process)', () => {
  let cell: CellProcess;
  let admin: ApiClient;
  let peer: ApiClient;
  const anon = () => new ApiClient(cell.url);

  before(async () => {
    cell = await startCellProcess();
    admin = new ApiClient(cell.url);
    peer = new ApiClient(cell.url);
  });
  after(async () => cell.destroy());

  it('the setup wizard (/api/setup/* writes) needs no CSRF token', async () => {
    for (const body of [ADMIN, IDENTITY, NETWORK, {}]) {
      const res = await admin.post('/api/setup/step', body, { csrf: false });
      assert.equal(res.status, 200, res.text);
    }
    const done = await admin.post('/api/setup/complete', {}, { csrf: false });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.complete, true);
    // Once complete, setup writes answer 409 (not a CSRF 403), token or not.
    assertError(await admin.post('/api/setup/step', ADMIN, { csrf: false }), 409, { code: 'conflict' });
    assertError(await admin.post('/api/setup/complete', {}, { csrf: false }), 409, { code: 'conflict' });

    await admin.fetchCsrf();
    // No endpoint creates peer users yet (that comes with the peers feature), so the peer is
    // written straight into the cell's SQLite file; see insertUser in support/db.ts.
    await insertUser(cell.dataDir, PEER);
    await insertUser(cell.dataDir, SECOND_ADMIN);
    assert.equal((await peer.login(PEER.username, PEER.password)).status, 200);
  });

  it('PUT /api/config without X-CSRF-Token → 403 csrf, and nothing changes', async () => {
    const before = await admin.get('/api/config');
    assert.equal(before.status, 200);
    const res = await admin.put('/api/config', { identity: { cell_name: 'no-token' } }, { csrf: false });
    assertError(res, 403, { code: 'csrf' });
    assert.match(res.body.error, /X-CSRF-Token/);
    assert.deepEqual((await admin.get('/api/config')).body, before.body);
  });

  it('a wrong token, or another session’s token, → 403 csrf', async () => {
    const before = await admin.get('/api/config');
    for (const token of ['wrong', `${admin.csrf}x`, admin.csrf!.slice(0, -1), 'A'.repeat(admin.csrf!.length)]) {
      const res = await admin.put(
        '/api/config',
        { identity: { cell_name: 'bad-token' } },
        { headers: { 'x-csrf-token': token } },
      );
      assertError(res, 403, { code: 'csrf', context: `token ${token}` });
    }
    // The same admin signed in elsewhere has a token of its own; it is not valid for this session.
    const elsewhere = new ApiClient(cell.url);
    await elsewhere.login(ADMIN.username, ADMIN.password);
    const crossed = await admin.put(
      '/api/config',
      { identity: { cell_name: 'crossed' } },
      { headers: { 'x-csrf-token': elsewhere.csrf! } },
    );
    assertError(crossed, 403, { code: 'csrf' });
    assert.deepEqual((await admin.get('/api/config')).body, before.body);
  });

  it('the right token → 200 and the change is stored', async () => {
    const res = await admin.put('/api/config', { identity: { cell_name: 'with-token' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.config.identity.cell_name, 'with-token');
    assert.equal(res.body.config.identity.domain, IDENTITY.domain, 'a partial update keeps the rest');
    const read = await admin.get('/api/config');
    assert.equal(read.body.config.identity.cell_name, 'with-token');
  });

  it('CSRF is checked on every write method, before the router (unknown routes too)', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await admin.request(method, '/api/status', { json: {}, csrf: false });
      assertError(res, 403, { code: 'csrf', context: method });
    }
    assertError(await admin.request('DELETE', '/api/config', { csrf: false }), 403, { code: 'csrf' });
    // GET needs no token.
    assert.equal((await admin.request('GET', '/api/status', { csrf: false })).status, 200);
  });

  it('no session → 401 before any CSRF check', async () => {
    assertError(await anon().put('/api/config', { identity: { cell_name: 'anon' } }), 401, { code: 'unauthorized' });
    const withToken = await anon().put(
      '/api/config',
      { identity: { cell_name: 'anon' } },
      { headers: { 'x-csrf-token': admin.csrf! } },
    );
    assertError(withToken, 401, { code: 'unauthorized' });
  });

  it('/api/auth/* writes need no CSRF token', async () => {
    const root2 = new ApiClient(cell.url);
    const login = await root2.post(
      '/api/auth/login',
      { username: SECOND_ADMIN.username, password: SECOND_ADMIN.password },
      { csrf: false },
    );
    assert.equal(login.status, 200, login.text);
    const changed = await root2.post(
      '/api/auth/change-password',
      { current_password: SECOND_ADMIN.password, new_password: 'changed without a token' },
      { csrf: false },
    );
    assert.equal(changed.status, 200, changed.text);
    const reset = await root2.post('/api/auth/admin/reset-password', { username: 'pat' }, { csrf: false });
    assert.equal(reset.status, 200, reset.text);
    PEER.password = reset.body.password;
    const out = await root2.post('/api/auth/logout', {}, { csrf: false });
    assert.equal(out.status, 200);
    assertError(await root2.get('/api/auth/me'), 401);
    // The reset signed the peer out; sign it in again, and pick a new password (a reset one opens
    // only /api/auth/*), for the role tests.
    peer = new ApiClient(cell.url);
    assert.equal((await peer.login(PEER.username, PEER.password)).status, 200);
    const own = await peer.post(
      '/api/auth/change-password',
      { current_password: PEER.password, new_password: 'the peer chose this one' },
      { csrf: false },
    );
    assert.equal(own.status, 200, own.text);
    PEER.password = 'the peer chose this one';
  });

  it('admin → any /api/peer/... path → 403 wrong_role', async () => {
    for (const path of [
      '/api/peer',
      '/api/peer/',
      '/api/peer/me',
      '/api/peer/config/wg0',
      '/api/peer/does-not-exist',
    ]) {
      assertError(await admin.get(path), 403, { code: 'wrong_role', context: `GET ${path}` });
    }
    assertError(await admin.post('/api/peer/anything', {}), 403, { code: 'wrong_role', context: 'POST with CSRF' });
    assertError(await admin.delete('/api/peer/anything'), 403, { code: 'wrong_role', context: 'DELETE with CSRF' });
  });

  it('peer → /api/status, /api/config, /api/auth/users and other admin paths → 403 wrong_role', async () => {
    for (const path of [
      '/api/status',
      '/api/config',
      '/api/auth/users',
      '/api/health/history',
      '/api/peers',
      '/api/anything-else',
    ]) {
      assertError(await peer.get(path), 403, { code: 'wrong_role', context: `GET ${path}` });
    }
    const write = await peer.put('/api/config', { identity: { cell_name: 'peer-was-here' } });
    assertError(write, 403, { code: 'wrong_role' });
    assert.equal(
      (await admin.get('/api/config')).body.config.identity.cell_name,
      'with-token',
      'the peer changed nothing',
    );
    assertError(await peer.post('/api/auth/admin/reset-password', { username: 'admin' }), 403, { code: 'wrong_role' });
  });

  it('peer reaches /api/auth/* and gets past the role check on /api/peer/*', async () => {
    const me = await peer.get('/api/auth/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.user.role, 'peer');
    assert.equal((await peer.get('/api/auth/csrf-token')).status, 200);
    // No peer routes exist yet: the guard lets the peer through and the router answers 404.
    assertError(await peer.get('/api/peer/anything'), 404, { code: 'not_found' });
    // Peer writes still need the CSRF token.
    assertError(await peer.post('/api/peer/anything', {}, { csrf: false }), 403, { code: 'csrf' });
  });

  it('no session → 401 on admin, peer and session paths alike', async () => {
    for (const path of [
      '/api/status',
      '/api/config',
      '/api/auth/users',
      '/api/auth/me',
      '/api/auth/csrf-token',
      '/api/health/history',
      '/api/peer/anything',
      '/api/setup/status',
      '/api/setup/step',
    ]) {
      assertError(await anon().get(path), 401, { code: 'unauthorized', context: path });
    }
  });

  it('odd spellings of protected paths never serve data without a session', async () => {
    // The router matches paths case-insensitively; whatever the guard makes of these, no data leaks.
    for (const path of [
      '/API/STATUS',
      '/Api/Config',
      '/api/%73tatus',
      '/api//status',
      '/api/status/',
      '/api/auth/USERS',
      '/api/Health/History',
    ]) {
      const res = await anon().get(path);
      assert.ok([401, 403, 404].includes(res.status), `${path}: ${res.status} ${res.text}`);
      assert.equal(res.body.ok, false, path);
    }
  });
});
