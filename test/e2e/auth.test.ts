import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, ADMIN, SESSION_COOKIE } from '../support/client.js';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';
import { startCellProcess } from '../support/cell-process.js';
import { insertUser, sessionIdHash, withCellDb } from '../support/db.js';
import { assertError } from '../support/expect.js';

const PEER = { username: 'pat', password: 'peer password 1234', role: 'peer' as const };

/** The Set-Cookie line for the session cookie, if the response carried one. */
function sessionSetCookie(res: { headers: Headers }): string | undefined {
  return res.headers
    .getSetCookie()
    .filter((line) => line.startsWith(`${SESSION_COOKIE}=`))
    .at(-1);
}

const sessionRows = (dataDir: string, cookie: string): number =>
  withCellDb(
    dataDir,
    (db) => db.prepare('SELECT count(*) AS n FROM sessions WHERE id_hash = ?').get(sessionIdHash(cookie)).n as number,
  );

describe('login, logout, me and csrf-token (real cell process)', () => {
  let ready: ReadyCell;
  before(async () => {
    ready = await startReadyCell();
    await insertUser(ready.cell.dataDir, PEER);
    await insertUser(ready.cell.dataDir, {
      username: 'gone',
      password: 'disabled password 1',
      role: 'admin',
      disabled: true,
    });
  });
  after(async () => ready.cell.destroy());

  it('signs in with the right password: a hardened session cookie, the user and a CSRF token', async () => {
    const api = ready.anon();
    const res = await api.post('/api/auth/login', ADMIN);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true);
    assert.deepEqual(res.body.user, { username: 'admin', role: 'admin', must_change_password: false });
    assert.equal(typeof res.body.csrf_token, 'string');
    assert.ok(res.body.csrf_token.length >= 32);
    assert.ok(!res.text.includes(ADMIN.password), 'the password is never echoed');

    const cookie = sessionSetCookie(res);
    assert.ok(cookie, 'a session cookie is set');
    assert.match(cookie, /;\s*httponly/i);
    assert.match(cookie, /;\s*samesite=strict/i);
    assert.match(cookie, /;\s*path=\//i);
    assert.doesNotMatch(cookie, /;\s*secure/i, 'no Secure flag over plain http');
    const id = api.sessionId!;
    assert.ok(id.length >= 40, 'the session id is long and random');
    assert.equal(
      sessionRows(ready.cell.dataDir, id),
      1,
      'the session is stored server-side, keyed by a hash of the id',
    );
    withCellDb(ready.cell.dataDir, (db) => {
      const raw = db
        .prepare('SELECT count(*) AS n FROM sessions WHERE id_hash = ? OR data LIKE ?')
        .get(id, `%${id}%`).n;
      assert.equal(raw, 0, 'the raw session id is stored nowhere');
    });

    // A peer-role user signs in the same way.
    const peer = ready.anon();
    const peerRes = await peer.login(PEER.username, PEER.password);
    assert.equal(peerRes.status, 200, peerRes.text);
    assert.deepEqual(peerRes.body.user, { username: 'pat', role: 'peer', must_change_password: false });
  });

  it('answers a wrong password and an unknown user with the very same 401, and sets no session', async () => {
    const wrong = await ready.anon().post('/api/auth/login', { username: 'admin', password: 'not the password' });
    const unknown = await ready
      .anon()
      .post('/api/auth/login', { username: 'nobody-here', password: 'not the password' });
    const disabled = await ready.anon().post('/api/auth/login', { username: 'gone', password: 'disabled password 1' });
    for (const [name, res] of [
      ['wrong password', wrong],
      ['unknown user', unknown],
      ['disabled user', disabled],
    ] as const) {
      assertError(res, 401, { code: 'unauthorized', context: name });
      assert.equal(sessionSetCookie(res), undefined, `${name}: no session cookie`);
    }
    assert.deepEqual(unknown.body, wrong.body, 'an unknown user cannot be told from a wrong password');
    assert.deepEqual(disabled.body, wrong.body, 'a disabled user cannot be told from a wrong password');
  });

  it('GET /api/auth/me shows the signed-in user without secrets, 401 without a session', async () => {
    const api = ready.anon();
    assertError(await api.get('/api/auth/me'), 401, { code: 'unauthorized' });
    await api.login(ADMIN.username, ADMIN.password);
    const me = await api.get('/api/auth/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.ok, true);
    assert.equal(me.body.user.username, 'admin');
    assert.equal(me.body.user.role, 'admin');
    assert.equal(me.body.user.disabled, false);
    assert.deepEqual(Object.keys(me.body.user).sort(), [
      'created_at',
      'disabled',
      'id',
      'must_change_password',
      'role',
      'username',
    ]);
    assert.ok(!me.text.includes('scrypt$') && !me.text.includes('password_hash'));
    assert.equal(me.headers.get('cache-control'), 'no-store');
  });

  it('GET /api/auth/csrf-token: 401 without a session; with one, the session-bound token', async () => {
    const anon = ready.anon();
    assertError(await anon.get('/api/auth/csrf-token'), 401, { code: 'unauthorized' });
    assert.equal(anon.sessionId, undefined, 'asking does not create a session');

    const api = ready.anon();
    const login = await api.post('/api/auth/login', ADMIN);
    const first = await api.get('/api/auth/csrf-token');
    assert.equal(first.status, 200);
    assert.equal(first.body.ok, true);
    assert.equal(first.body.token, login.body.csrf_token, 'the token handed out at login');
    assert.equal(first.headers.get('cache-control'), 'no-store');
    const again = await api.get('/api/auth/csrf-token');
    assert.equal(again.body.token, first.body.token, 'stable for the life of the session');

    const other = ready.anon();
    await other.login(ADMIN.username, ADMIN.password);
    assert.notEqual(other.csrf, first.body.token, 'each session has its own token');
  });

  it('logout destroys the session: the old cookie no longer works anywhere', async () => {
    const api = ready.anon();
    await api.login(ADMIN.username, ADMIN.password);
    const stolen = api.clone(); // the same cookie, kept elsewhere
    const id = api.sessionId!;
    assert.equal((await stolen.get('/api/auth/me')).status, 200);

    const out = await api.post('/api/auth/logout', {}, { csrf: false });
    assert.equal(out.status, 200, out.text);
    assert.deepEqual(out.body, { ok: true });
    const cleared = sessionSetCookie(out);
    assert.ok(cleared, 'the cookie is cleared');
    assert.match(cleared, /expires=Thu, 01 Jan 1970/i);
    assert.equal(api.sessionId, undefined);

    assertError(await stolen.get('/api/auth/me'), 401, { code: 'unauthorized' });
    assertError(await stolen.get('/api/status'), 401, { code: 'unauthorized' });
    assertError(await stolen.put('/api/config', { identity: { cell_name: 'stolen' } }), 401, { code: 'unauthorized' });
    assert.equal(sessionRows(ready.cell.dataDir, id), 0, 'the session row is gone');

    // Logging out without a session is harmless.
    assert.equal((await ready.anon().post('/api/auth/logout')).status, 200);
  });

  it('ends a session whose account was disabled after sign-in, even by a write from outside the cell', async () => {
    const peer = ready.anon();
    assert.equal((await peer.login(PEER.username, PEER.password)).status, 200);
    assert.equal((await peer.get('/api/auth/me')).status, 200, 'signed in, and the account is now in memory');
    withCellDb(ready.cell.dataDir, (db) => db.prepare("UPDATE users SET disabled = 1 WHERE username = 'pat'").run());
    // Straight away: another connection's commit counts from the next request (the cell watches its -wal
    // file), not only once WriteCounter.EXTERNAL_CHECK_MS has passed since the request above.
    try {
      assertError(await peer.get('/api/auth/me'), 401, { code: 'unauthorized' });
    } finally {
      withCellDb(ready.cell.dataDir, (db) => db.prepare("UPDATE users SET disabled = 0 WHERE username = 'pat'").run());
    }
    assertError(await peer.get('/api/auth/me'), 401, { code: 'unauthorized', context: 'the session stays ended' });
  });
});

describe('session fixation (real cell process)', () => {
  it('the setup wizard signs its admin in under a new id, not a cookie the browser already held', async () => {
    const cell = await startCellProcess();
    try {
      const api = new ApiClient(cell.url);
      const planted = 'planted-by-an-attacker-0123456789abcdefghijklmnop';
      api.cookies.set(SESSION_COOKIE, planted);
      const res = await api.post('/api/setup/step', ADMIN);
      assert.equal(res.status, 200, res.text);
      assert.ok(api.sessionId && api.sessionId !== planted, 'a fresh session id');
      const attacker = new ApiClient(cell.url);
      attacker.cookies.set(SESSION_COOKIE, planted);
      assertError(await attacker.get('/api/setup/step'), 401, { code: 'unauthorized' });
      assert.equal((await api.get('/api/setup/step')).status, 200);
      assert.equal(sessionRows(cell.dataDir, planted), 0);
    } finally {
      await cell.destroy();
    }
  });

  describe('at login', () => {
    let ready: ReadyCell;
    before(async () => {
      ready = await startReadyCell();
      await insertUser(ready.cell.dataDir, PEER);
    });
    after(async () => ready.cell.destroy());

    it('a cookie planted before login is replaced, and the planted id never becomes authenticated', async () => {
      const planted = 'planted-by-an-attacker-0123456789abcdefghijklmnop';
      const victim = ready.anon();
      victim.cookies.set(SESSION_COOKIE, planted);
      const res = await victim.post('/api/auth/login', ADMIN);
      assert.equal(res.status, 200, res.text);
      assert.ok(victim.sessionId, 'signed in');
      assert.notEqual(victim.sessionId, planted, 'a new session id is issued at login');
      assert.equal((await victim.get('/api/auth/me')).status, 200);

      const attacker = ready.anon();
      attacker.cookies.set(SESSION_COOKIE, planted);
      assertError(await attacker.get('/api/auth/me'), 401, { code: 'unauthorized' });
      assertError(await attacker.get('/api/status'), 401, { code: 'unauthorized' });
      assert.equal(sessionRows(ready.cell.dataDir, planted), 0, 'nothing is stored under the planted id');
    });

    it('a live session held before signing in again is replaced and destroyed', async () => {
      const api = ready.anon();
      assert.equal((await api.login(PEER.username, PEER.password)).status, 200);
      const before = api.clone();
      const oldId = api.sessionId!;

      const res = await api.post('/api/auth/login', ADMIN);
      assert.equal(res.status, 200, res.text);
      assert.notEqual(api.sessionId, oldId);
      assert.equal((await api.get('/api/auth/me')).body.user.username, 'admin');

      // The cookie held before login is neither the admin's session nor the peer's any more.
      assertError(await before.get('/api/auth/me'), 401, { code: 'unauthorized' });
      assertError(await before.get('/api/status'), 401, { code: 'unauthorized' });
      assert.equal(sessionRows(ready.cell.dataDir, oldId), 0);
    });
  });
});

describe('password change, admin reset and the user list (real cell process)', () => {
  let ready: ReadyCell;
  /** The admin's password as the tests so far leave it (the change-password test changes it). */
  let ADMIN_PASSWORD_NOW = ADMIN.password;
  /** Every password these tests send or receive: none may reach the cell's log. */
  const seen = new Set<string>([ADMIN.password, PEER.password]);
  before(async () => {
    ready = await startReadyCell({ cellYaml: 'log_level: debug\n' });
    await insertUser(ready.cell.dataDir, PEER);
  });
  after(async () => ready.cell.destroy());

  it('change-password checks the current password and the new one, changing nothing when refused', async () => {
    const api = ready.anon();
    await api.login(ADMIN.username, ADMIN.password);
    const wrong = await api.post('/api/auth/change-password', {
      current_password: 'not it at all',
      new_password: 'a brand new password',
    });
    assertError(wrong, 400, { code: 'validation_failed', fields: ['current_password'] });
    const short = await api.post('/api/auth/change-password', {
      current_password: ADMIN.password,
      new_password: 'short',
    });
    assertError(short, 400, { code: 'validation_failed', fields: ['new_password'] });
    const same = await api.post('/api/auth/change-password', {
      current_password: ADMIN.password,
      new_password: ADMIN.password,
    });
    assertError(same, 400, { code: 'validation_failed', fields: ['new_password'] });
    const missing = await api.post('/api/auth/change-password', { new_password: 'a brand new password' });
    assertError(missing, 400, { code: 'validation_failed', fields: ['current_password'] });
    // Still the old password.
    assert.equal((await ready.anon().post('/api/auth/login', ADMIN)).status, 200);
    assertError(
      await ready.anon().post('/api/auth/change-password', { current_password: 'x', new_password: 'y'.repeat(12) }),
      401,
    );
  });

  it('change-password refuses a new password of only spaces or easy to guess, spending no attempt', async () => {
    const api = ready.anon();
    await api.login(ADMIN.username, ADMIN_PASSWORD_NOW);
    let remaining: string | null = null;
    for (const [password, why] of [
      [' '.repeat(12), /only spaces/],
      ['iloveyou1234', /too easy to guess/],
      ['123456789012', /too easy to guess/],
      ['Password123!', /too easy to guess/],
      ['abcdefghijkl', /too easy to guess/],
    ] as const) {
      const body = { current_password: ADMIN_PASSWORD_NOW, new_password: password };
      const res = await api.post('/api/auth/change-password', body);
      assertError(res, 400, { code: 'validation_failed', fields: ['new_password'], context: JSON.stringify(password) });
      assert.match(res.body.fields.new_password, why);
      remaining ??= res.headers.get('ratelimit-remaining');
      assert.equal(res.headers.get('ratelimit-remaining'), remaining, 'a refused new password costs no attempt');
    }
    const login = await ready.anon().post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD_NOW });
    assert.equal(login.status, 200, 'the password is unchanged');
  });

  it('change-password signs out every other session of the user and keeps the current one', async () => {
    const NEW = 'a brand new admin password';
    const here = ready.anon();
    const elsewhere = ready.anon();
    await here.login(ADMIN.username, ADMIN.password);
    await elsewhere.login(ADMIN.username, ADMIN.password);
    const peer = ready.anon();
    await peer.login(PEER.username, PEER.password);

    const res = await here.post('/api/auth/change-password', { current_password: ADMIN.password, new_password: NEW });
    assert.equal(res.status, 200, res.text);
    ADMIN_PASSWORD_NOW = NEW;
    seen.add(NEW);
    assert.deepEqual(res.body, { ok: true });
    assert.ok(!res.text.includes(NEW));

    assert.equal((await here.get('/api/auth/me')).status, 200, 'the current session stays');
    assert.equal(
      (await here.put('/api/config', { identity: { cell_name: 'still-here' } })).status,
      200,
      'with its CSRF token',
    );
    assertError(await elsewhere.get('/api/auth/me'), 401, {
      code: 'unauthorized',
      context: 'the other device is signed out',
    });
    assert.equal((await peer.get('/api/auth/me')).status, 200, "other users' sessions are untouched");

    assertError(await ready.anon().post('/api/auth/login', ADMIN), 401, {
      context: 'the old password no longer works',
    });
    const fresh = ready.anon();
    assert.equal((await fresh.login(ADMIN.username, NEW)).status, 200);
    withCellDb(ready.cell.dataDir, (db) => {
      const row = db.prepare("SELECT password_hash FROM users WHERE username = 'admin'").get();
      assert.match(row.password_hash, /^scrypt\$/, 'stored as an scrypt hash');
      assert.ok(!row.password_hash.includes(NEW));
    });
  });

  it('admin reset-password returns a generated password once, forces a change and signs the target out', async () => {
    const admin = ready.anon();
    await admin.login(ADMIN.username, ADMIN_PASSWORD_NOW);
    const peer = ready.anon();
    await peer.login(PEER.username, PEER.password);

    const res = await admin.post('/api/auth/admin/reset-password', { username: 'pat' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.username, 'pat');
    assert.equal(res.body.must_change_password, true);
    assert.match(res.body.password, /^[A-Za-z0-9]{20}$/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const generated: string = res.body.password;
    seen.add(generated);

    assertError(await peer.get('/api/auth/me'), 401, { code: 'unauthorized', context: 'the target is signed out' });
    assertError(await ready.anon().post('/api/auth/login', { username: PEER.username, password: PEER.password }), 401, {
      context: 'the old password is gone',
    });
    const back = await ready.anon().post('/api/auth/login', { username: 'pat', password: generated });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.body.user.must_change_password, true);

    // Shown once: nothing that lists or describes users ever shows it again.
    const list = await admin.get('/api/auth/users');
    assert.ok(!list.text.includes(generated));
    const me = await admin.get('/api/auth/me');
    assert.ok(!me.text.includes(generated));

    // A second reset issues a different password; the first stops working.
    const again = await admin.post('/api/auth/admin/reset-password', { username: 'pat' });
    assert.equal(again.status, 200);
    assert.notEqual(again.body.password, generated);
    seen.add(again.body.password);
    assertError(await ready.anon().post('/api/auth/login', { username: 'pat', password: generated }), 401);
    // Until pat picks a new password, only /api/auth/* answers; after it, the rest opens again.
    const pat = ready.anon();
    assert.equal((await pat.login('pat', again.body.password)).status, 200);
    assertError(await pat.get('/api/peer/me'), 403, { code: 'password_change_required', context: 'before the change' });
    assert.equal((await pat.get('/api/auth/me')).status, 200, 'its own account stays reachable');
    const changed = await pat.post('/api/auth/change-password', {
      current_password: again.body.password,
      new_password: PEER.password,
    });
    assert.equal(changed.status, 200, changed.text);
    assert.notEqual(
      (await pat.get('/api/peer/me')).body.code,
      'password_change_required',
      'the change lifts the block',
    );
    assert.equal((await pat.get('/api/auth/me')).body.user.must_change_password, false);
  });

  it('admin reset-password refuses its own account, unknown users, bad input and non-admins', async () => {
    const admin = ready.anon();
    await admin.login(ADMIN.username, ADMIN_PASSWORD_NOW);
    assertError(await admin.post('/api/auth/admin/reset-password', { username: 'admin' }), 400, {
      fields: ['username'],
    });
    assertError(await admin.post('/api/auth/admin/reset-password', { username: 'nobody' }), 404, { code: 'not_found' });
    assertError(await admin.post('/api/auth/admin/reset-password', { username: 'Not Valid!' }), 400, {
      fields: ['username'],
    });
    assertError(await admin.post('/api/auth/admin/reset-password', {}), 400, { fields: ['username'] });

    const peerPassword = (await admin.post('/api/auth/admin/reset-password', { username: 'pat' })).body
      .password as string;
    seen.add(peerPassword);
    const peer = ready.anon();
    await peer.login('pat', peerPassword);
    assertError(await peer.post('/api/auth/admin/reset-password', { username: 'admin' }), 403, { code: 'wrong_role' });
    assert.equal(
      (await ready.anon().post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD_NOW })).status,
      200,
      'admin untouched',
    );
  });

  it('lists users for admins only, never with password hashes, and pages through them', async () => {
    const admin = ready.anon();
    await admin.login(ADMIN.username, ADMIN_PASSWORD_NOW);
    const res = await admin.get('/api/auth/users');
    assert.equal(res.status, 200, res.text);
    assert.ok(!res.text.includes('scrypt$'), 'no hash in the raw response');
    assert.ok(!res.text.includes('password_hash'), 'no hash field in the raw response');
    assert.equal(res.body.total, 2);
    assert.deepEqual(
      res.body.users.map((u: { username: string; role: string }) => [u.username, u.role]),
      [
        ['admin', 'admin'],
        ['pat', 'peer'],
      ],
    );
    for (const u of res.body.users) {
      assert.deepEqual(Object.keys(u).sort(), [
        'created_at',
        'disabled',
        'id',
        'must_change_password',
        'role',
        'username',
      ]);
    }
    const page = await admin.get('/api/auth/users?limit=1&offset=1');
    assert.equal(page.status, 200);
    assert.deepEqual(
      page.body.users.map((u: { username: string }) => u.username),
      ['pat'],
    );
    assert.equal(page.body.total, 2);
    assert.equal(page.body.limit, 1);
    assert.equal(page.body.offset, 1);
    const peers = await admin.get('/api/auth/users?role=peer');
    assert.deepEqual(
      peers.body.users.map((u: { username: string }) => u.username),
      ['pat'],
    );
    assert.equal(peers.body.total, 1);

    assertError(await ready.anon().get('/api/auth/users'), 401, { code: 'unauthorized' });
  });

  it('no password, generated or chosen, and no hash ever reaches the log (even at debug level)', () => {
    const log = ready.cell.output();
    assert.ok(log.includes('cell listening'), 'the log was captured');
    assert.ok(seen.size >= 5);
    for (const secret of seen)
      assert.ok(!log.includes(secret), `a password leaked into the log: ${secret.slice(0, 3)}…`);
    assert.ok(!log.includes('scrypt$'), 'no password hash in the log');
  });
});
