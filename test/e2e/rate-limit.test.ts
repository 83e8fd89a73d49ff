import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCellProcess } from '../support/cell-process.js';
import { ApiClient, ADMIN, SESSION_COOKIE } from '../support/client.js';
import { startReadyCell } from '../support/ready-cell.js';
import { assertError, rateLimitHeaders } from '../support/expect.js';
import { withCellDb } from '../support/db.js';

const WRONG = { username: ADMIN.username, password: 'definitely not the password' };

function retryAfter(res: { headers: Headers }, maxSeconds: number): number {
  const value = res.headers.get('retry-after');
  assert.ok(value !== null, 'Retry-After present');
  assert.match(value, /^\d+$/, 'Retry-After is whole seconds');
  const seconds = Number(value);
  assert.ok(seconds >= 1 && seconds <= maxSeconds, `Retry-After ${seconds} within 1..${maxSeconds}`);
  return seconds;
}

// Each test has its own cell: limits are per process and would leak between tests otherwise.
describe('rate limits (real cell process)', () => {
  it('10 failed logins from one client: the 11th attempt, even with the right password, gets 429', async () => {
    const { cell, admin } = await startReadyCell();
    try {
      const client = new ApiClient(cell.url);
      for (let i = 1; i <= 10; i++) {
        const res = await client.post('/api/auth/login', WRONG);
        assertError(res, 401, { code: 'unauthorized', context: `failure ${i}` });
        const h = rateLimitHeaders(res);
        assert.equal(h.limit, 10);
        assert.equal(h.remaining, 10 - i, `remaining after failure ${i}`);
        assert.ok(h.reset >= 1 && h.reset <= 900);
      }
      const blocked = await client.post('/api/auth/login', ADMIN);
      assertError(blocked, 429, { code: 'rate_limited' });
      const seconds = retryAfter(blocked, 900);
      const h = rateLimitHeaders(blocked);
      assert.deepEqual([h.limit, h.remaining], [10, 0]);
      assert.ok(h.reset >= 1 && h.reset <= 900);
      assert.ok(Math.abs(h.reset - seconds) <= 1, 'Retry-After agrees with RateLimit-Reset');
      assert.equal(client.cookies.get(SESSION_COOKIE), undefined, 'no session was created');

      // The limit is per client address; a forged X-Forwarded-For does not make a new client
      // (the cell does not trust proxy headers unless cell.yaml says so).
      const forged = await new ApiClient(cell.url).post('/api/auth/login', ADMIN, {
        headers: { 'x-forwarded-for': '203.0.113.9' },
      });
      assertError(forged, 429, { code: 'rate_limited', context: 'forged X-Forwarded-For' });
      // Password changes count against the same budget.
      const change = await admin.post('/api/auth/change-password', {
        current_password: ADMIN.password,
        new_password: 'another long password',
      });
      assertError(change, 429, { code: 'rate_limited', context: 'change-password' });
      // Sessions that already exist keep working: only sign-in attempts are limited.
      assert.equal((await admin.get('/api/status')).status, 200);
    } finally {
      await cell.destroy();
    }
  });

  it('the login limit is per client (behind a trusted proxy) and its size comes from cell.yaml', async () => {
    const { cell } = await startReadyCell({
      cellYaml: 'trust_proxy: true\nrate_limit:\n  login_failures: 3\n  login_window_minutes: 2\n',
    });
    try {
      const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
      const client = new ApiClient(cell.url);
      for (let i = 1; i <= 3; i++) {
        const res = await client.post('/api/auth/login', WRONG, from('203.0.113.5'));
        assertError(res, 401, { context: `failure ${i}` });
        assert.equal(rateLimitHeaders(res).limit, 3);
      }
      const blocked = await client.post('/api/auth/login', ADMIN, from('203.0.113.5'));
      assertError(blocked, 429, { code: 'rate_limited' });
      retryAfter(blocked, 120);
      assert.ok(rateLimitHeaders(blocked).reset <= 120);
      const other = await new ApiClient(cell.url).post('/api/auth/login', ADMIN, from('203.0.113.6'));
      assert.equal(other.status, 200, `another client signs in: ${other.text}`);
      assert.equal(rateLimitHeaders(other).remaining, 3);
    } finally {
      await cell.destroy();
    }
  });

  it('the API-wide limiter (api_per_minute from cell.yaml) answers 429 after N requests', async () => {
    const N = 5;
    const cell = await startCellProcess({ cellYaml: `rate_limit:\n  api_per_minute: ${N}\n` });
    try {
      const client = new ApiClient(cell.url);
      for (let i = 1; i <= N; i++) {
        const res = await client.get('/api/setup/status');
        assert.equal(res.status, 200, `request ${i}: ${res.text}`);
        const h = rateLimitHeaders(res);
        assert.equal(h.limit, N);
        assert.equal(h.remaining, N - i, `remaining after request ${i}`);
        // counted per second: a request leaves the window 60 to 61 s after it was made, never before
        assert.ok(h.reset >= 1 && h.reset <= 61, `reset ${h.reset}`);
      }
      const blocked = await client.get('/api/setup/status');
      assertError(blocked, 429, { code: 'rate_limited' });
      retryAfter(blocked, 61);
      const h = rateLimitHeaders(blocked);
      assert.deepEqual([h.limit, h.remaining], [N, 0]);
      assert.ok(h.reset >= 59 && h.reset <= 61, `reset ${h.reset}: the first request's second plus the minute`);

      // The router matches paths case-insensitively; the limiter (like the guard) must too.
      assertError(await client.get('/API/SETUP/STATUS'), 429, { code: 'rate_limited' });

      // Every /api path shares the budget, writes included.
      assertError(await client.post('/api/auth/login', ADMIN), 429, { code: 'rate_limited', context: 'login' });
      assertError(await client.post('/api/setup/step', ADMIN), 429, { code: 'rate_limited', context: 'setup step' });
      const users = withCellDb(cell.dataDir, (db) => db.prepare('SELECT count(*) AS n FROM users').get().n);
      assert.equal(users, 0, 'the refused setup step created no admin');
      // /health is outside /api: never limited, no RateLimit headers.
      const health = await client.get('/health');
      assert.equal(health.status, 200);
      assert.equal(health.body.setup_complete, false);
      assert.equal(health.headers.get('ratelimit-limit'), null);
    } finally {
      await cell.destroy();
    }
  });

  it('100 logins at once, 99 wrong then the right one: only the limit is checked, the right one refused', async () => {
    const { cell } = await startReadyCell();
    try {
      const client = new ApiClient(cell.url);
      // The right password goes last, once the burst has reached the cell: when the first guess is
      // refused (the limit is taken by guesses in flight), or, without a working limit, when all
      // of them were answered. Each scrypt is ~100 ms, so most guesses are still being checked.
      let reached!: () => void;
      const burstArrived = new Promise<void>((resolve) => (reached = resolve));
      const wrong = Array.from({ length: 99 }, () =>
        client.post('/api/auth/login', WRONG).then((res) => {
          if (res.status === 429) reached();
          return res;
        }),
      );
      await Promise.race([burstArrived, Promise.all(wrong)]);
      const right = await client.post('/api/auth/login', ADMIN);
      const answers = await Promise.all(wrong);
      const evaluated = answers.filter((res) => res.status === 401).length;
      for (const res of answers) {
        if (res.status !== 401) assertError(res, 429, { code: 'rate_limited', context: 'a guess past the limit' });
      }
      assert.equal(evaluated, 10, 'exactly the limit of guesses was checked');
      assertError(right, 429, { code: 'rate_limited', context: 'the right password after the limit was used' });
      assert.equal(client.cookies.get(SESSION_COOKIE), undefined, 'no session was created');
      const failures = withCellDb(
        cell.dataDir,
        (db) =>
          db.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'auth.login' AND result = 'denied'").get().n,
      );
      assert.ok(failures >= 10, `the checked guesses are audited (${failures})`);
    } finally {
      await cell.destroy();
    }
  });

  it('hashing is bounded: a burst past the queue gets 503 busy at once, another client still signs in', async () => {
    // A large login budget so that only the hash queue limits the burst (16 waiting per client, 48 in all).
    const { cell } = await startReadyCell({ cellYaml: 'trust_proxy: true\nrate_limit:\n  login_failures: 1000\n' });
    try {
      const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
      const client = new ApiClient(cell.url);
      const burst = Array.from({ length: 120 }, () => client.post('/api/auth/login', WRONG, from('203.0.113.7')));
      const admin = await new ApiClient(cell.url).post('/api/auth/login', ADMIN, from('198.51.100.2'));
      const answers = await Promise.all(burst);
      assert.equal(admin.status, 200, `another client's login is queued fairly, not refused: ${admin.text}`);
      const busy = answers.filter((res) => res.status === 503);
      for (const res of answers) {
        if (res.status !== 503) assertError(res, 401, { code: 'unauthorized', context: 'a checked guess' });
      }
      assert.ok(busy.length > 0, 'some of the burst found the hash queue full');
      for (const res of busy) {
        assertError(res, 503, { code: 'busy', context: 'queue full' });
        assert.equal(res.headers.get('retry-after'), '1');
      }
      // A guess refused unchecked does not count against the client's login budget.
      const after = await client.post('/api/auth/login', WRONG, from('203.0.113.7'));
      assert.equal(rateLimitHeaders(after).remaining, 1000 - (answers.length - busy.length) - 1);
      assert.equal(cell.child.exitCode, null, 'the cell is still running');
    } finally {
      await cell.destroy();
    }
  });
});
