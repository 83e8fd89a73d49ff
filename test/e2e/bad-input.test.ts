import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ADMIN, type ApiClient, type ApiResponse } from '../support/client.js';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';
import { withCellDb } from '../support/db.js';
import { assertError } from '../support/expect.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const MiB = 1024 * 1024;

/**
 * A chunked POST (what fetch will not send) written on a raw socket. The server answers 413 and
 * closes before every chunk is read, so writing the rest may fail with EPIPE/ECONNRESET; node:http
 * then drops the answer it had already received (a flaky test once). The raw socket keeps it.
 */
async function chunkedPost(
  url: string,
  path: string,
  chunks: Buffer[],
  headers: Record<string, string>,
): Promise<ApiResponse> {
  const { hostname, port } = new URL(url);
  const head = Object.entries({ host: `${hostname}:${port}`, ...headers, connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const framed = chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]);
  const bytes = Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\n${head}\r\n`),
    ...framed,
    Buffer.from('0\r\n\r\n'),
  ]);
  const { text } = await rawExchange(url, bytes);
  return parseRawResponse(text);
}

/** Status, headers and JSON body of one HTTP/1.1 answer read off a raw socket (Content-Length or chunked). */
function parseRawResponse(raw: string): ApiResponse {
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no complete answer arrived: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine = '', ...lines] = raw.slice(0, split).split('\r\n');
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let text = raw.slice(split + 4);
  if (headers.get('transfer-encoding') === 'chunked') {
    let decoded = '';
    for (let at = 0; ; ) {
      const eol = text.indexOf('\r\n', at);
      const size = Number.parseInt(text.slice(at, eol), 16);
      if (!(size > 0)) break;
      decoded += text.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    text = decoded;
  }
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body, text };
}

/**
 * Writes `bytes` on one raw keep-alive connection and collects what comes back until the server
 * closes it or `waitMs` pass. `closed` says which happened.
 */
function rawExchange(url: string, bytes: Buffer, waitMs = 5000): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => done(true));
    socket.on('close', () => done(true));
    socket.on('error', () => {}); // a reset after the answer is the server closing; 'close' follows
    socket.write(bytes);
  });
}

describe('bad inputs of every kind (real cell process)', () => {
  let ready: ReadyCell;
  let admin: ApiClient;
  let configBefore: unknown;
  let settingsBefore: unknown;

  const readSettings = () =>
    withCellDb(ready.cell.dataDir, (db) =>
      db.prepare('SELECT key, value, updated_at FROM settings ORDER BY key').all(),
    );

  before(async () => {
    ready = await startReadyCell();
    admin = ready.admin;
    const res = await admin.get('/api/config');
    assert.equal(res.status, 200);
    configBefore = res.body;
    settingsBefore = readSettings();
  });
  after(async () => ready.cell.destroy());

  it('malformed JSON → 400 malformed_json', async () => {
    const bodies = [
      '{"username":',
      '{',
      "{'username':'admin'}",
      '{"a":1} trailing',
      '{"a":01}',
      'NaN',
      '{"a":1,}',
      '\u0000',
    ];
    for (const raw of bodies) {
      assertError(await ready.anon().request('POST', '/api/auth/login', { rawBody: raw, headers: JSON_TYPE }), 400, {
        code: 'malformed_json',
        context: `login ${JSON.stringify(raw)}`,
      });
      assertError(await admin.request('PUT', '/api/config', { rawBody: raw, headers: JSON_TYPE }), 400, {
        code: 'malformed_json',
        context: `config ${JSON.stringify(raw)}`,
      });
    }
    // Setup is complete, but a malformed body is refused before anything else looks at it.
    assertError(await admin.request('POST', '/api/setup/step', { rawBody: '{', headers: JSON_TYPE }), 400, {
      code: 'malformed_json',
    });
  });

  it('a JSON array, string, number, boolean or null as the body → 400', async () => {
    for (const raw of ['[]', '[{"username":"admin","password":"x"}]', '"admin"', '42', 'true', 'null']) {
      assertError(await ready.anon().request('POST', '/api/auth/login', { rawBody: raw, headers: JSON_TYPE }), 400, {
        context: `login ${raw}`,
      });
      assertError(await admin.request('PUT', '/api/config', { rawBody: raw, headers: JSON_TYPE }), 400, {
        context: `config ${raw}`,
      });
    }
  });

  it('wrong types → 400 validation_failed naming each field', async () => {
    assertError(await ready.anon().post('/api/auth/login', { username: 5, password: true }), 400, {
      code: 'validation_failed',
      fields: ['username', 'password'],
    });
    assertError(await ready.anon().post('/api/auth/login', { username: ['admin'], password: { x: 1 } }), 400, {
      fields: ['username', 'password'],
    });
    assertError(await ready.anon().post('/api/auth/login', { username: 'admin' }), 400, { fields: ['password'] });
    assertError(await ready.anon().post('/api/auth/login', {}), 400, { fields: ['username', 'password'] });
    assertError(
      await admin.put('/api/config', { identity: { cell_name: 5 }, network: { wireguard_port: '51820', subnet: 1 } }),
      400,
      {
        code: 'validation_failed',
        fields: ['identity.cell_name', 'network.wireguard_port', 'network.subnet'],
      },
    );
    assertError(await admin.put('/api/config', { identity: 'home' }), 400, { fields: ['identity'] });
    assertError(await admin.put('/api/config', { network: { wireguard_port: 51820.5 } }), 400, {
      fields: ['network.wireguard_port'],
    });
    assertError(await admin.put('/api/config', { network: { wireguard_port: 0 } }), 400, {
      fields: ['network.wireguard_port'],
    });
    assertError(await admin.post('/api/auth/change-password', { current_password: 1, new_password: null }), 400, {
      fields: ['current_password', 'new_password'],
    });
    assertError(await admin.post('/api/auth/admin/reset-password', { username: 42 }), 400, { fields: ['username'] });
    // Deeply nested junk is just a wrong type.
    const deep = `{"identity":{"cell_name":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    assertError(await admin.request('PUT', '/api/config', { rawBody: deep, headers: JSON_TYPE }), 400, {
      fields: ['identity.cell_name'],
    });
  });

  it('unknown fields → 400 naming them', async () => {
    assertError(await ready.anon().post('/api/auth/login', { ...ADMIN, remember_me: true }), 400, {
      code: 'validation_failed',
      fields: ['remember_me'],
    });
    assertError(await admin.put('/api/config', { identity: { cell_name: 'renamed', color: 'red' }, extra: 1 }), 400, {
      code: 'validation_failed',
      fields: ['identity.color', 'extra'],
    });
    assertError(await admin.put('/api/config', { server: { port: 1 } }), 400, { fields: ['server'] });
    assertError(
      await admin.post('/api/auth/change-password', {
        current_password: ADMIN.password,
        new_password: 'x'.repeat(12),
        role: 'admin',
      }),
      400,
      {
        fields: ['role'],
      },
    );
    // Prototype-poisoning keys are refused outright (no field named: the parser rejects them).
    const poisoned = `{"username":"admin","password":"x","__proto__":{"role":"admin"}}`;
    assertError(await ready.anon().request('POST', '/api/auth/login', { rawBody: poisoned, headers: JSON_TYPE }), 400);
  });

  it('an empty update → 400', async () => {
    assertError(await admin.put('/api/config', {}), 400, { code: 'validation_failed' });
    assertError(await admin.request('PUT', '/api/config', { rawBody: '', headers: JSON_TYPE }), 400, {
      code: 'validation_failed',
    });
  });

  it('a body over 1 MiB → 413 payload_too_large', async () => {
    const big = JSON.stringify({ username: 'admin', password: 'x'.repeat(MiB + 16) });
    assertError(await ready.anon().request('POST', '/api/auth/login', { rawBody: big, headers: JSON_TYPE }), 413, {
      code: 'payload_too_large',
    });
    const bigConfig = JSON.stringify({ identity: { cell_name: 'x'.repeat(MiB + 16) } });
    assertError(await admin.request('PUT', '/api/config', { rawBody: bigConfig, headers: JSON_TYPE }), 413, {
      code: 'payload_too_large',
    });
    // Without a Content-Length (chunked): the limit still holds.
    const chunks = Array.from({ length: 24 }, () => Buffer.alloc(64 * 1024, 0x20));
    chunks.unshift(Buffer.from('{"username":"admin","password":"'));
    const chunked = await chunkedPost(ready.cell.url, '/api/auth/login', chunks, {
      ...JSON_TYPE,
      'transfer-encoding': 'chunked',
    });
    assertError(chunked, 413, { code: 'payload_too_large', context: 'chunked' });
    // A small gzip body that inflates past the limit.
    const bomb = gzipSync(JSON.stringify({ username: 'admin', password: 'a'.repeat(2 * MiB) }));
    assert.ok(bomb.length < 64 * 1024);
    const inflated = await ready.anon().request('POST', '/api/auth/login', {
      rawBody: new Uint8Array(bomb),
      headers: { ...JSON_TYPE, 'content-encoding': 'gzip' },
    });
    assertError(inflated, 413, { code: 'payload_too_large', context: 'gzip bomb' });
  });

  it('compressed bodies: valid gzip works, corrupt gzip → 400, an unknown encoding → 415', async () => {
    const ok = await ready.anon().request('POST', '/api/auth/login', {
      rawBody: new Uint8Array(gzipSync(JSON.stringify(ADMIN))),
      headers: { ...JSON_TYPE, 'content-encoding': 'gzip' },
    });
    assert.equal(ok.status, 200, ok.text);
    const corrupt = await admin.request('PUT', '/api/config', {
      rawBody: JSON.stringify({ identity: { cell_name: 'gzip' } }),
      headers: { ...JSON_TYPE, 'content-encoding': 'gzip' },
    });
    assertError(corrupt, 400, { context: 'not actually gzip' });
    const unknown = await admin.request('PUT', '/api/config', {
      rawBody: JSON.stringify({ identity: { cell_name: 'zstd' } }),
      headers: { ...JSON_TYPE, 'content-encoding': 'zstd' },
    });
    assertError(unknown, 415, { code: 'unsupported_media_type' });
  });

  it('a non-JSON content type with a body → 415', async () => {
    const cases: Array<[string | undefined, string]> = [
      ['text/plain', JSON.stringify(ADMIN)],
      ['application/x-www-form-urlencoded', 'username=admin&password=x'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nadmin\r\n--x--',
      ],
      ['application/xml', '<login/>'],
      [undefined, JSON.stringify(ADMIN)],
    ];
    for (const [type, raw] of cases) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const body = type ? raw : new TextEncoder().encode(raw); // a Uint8Array body lets fetch send no Content-Type
      assertError(await ready.anon().request('POST', '/api/auth/login', { rawBody: body, headers }), 415, {
        code: 'unsupported_media_type',
        context: `login as ${type}`,
      });
      assertError(await admin.request('PUT', '/api/config', { rawBody: body, headers }), 415, {
        code: 'unsupported_media_type',
        context: `config as ${type}`,
      });
    }
    // A JSON type with parameters is still JSON.
    const withCharset = await ready.anon().request('POST', '/api/auth/login', {
      rawBody: JSON.stringify(ADMIN),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(withCharset.status, 200, withCharset.text);
  });

  it('query parameters of the wrong type → 400 naming them', async () => {
    const cases: Array<[string, string]> = [
      ['limit=abc', 'limit'],
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=', 'limit'],
      ['limit=99999999999999999999999', 'limit'],
      ['offset=-1', 'offset'],
      ['offset=x', 'offset'],
      ['role=root', 'role'],
      ['limit=1&limit=2', 'limit'],
      ['sort=name', 'sort'],
    ];
    for (const [query, field] of cases) {
      assertError(await admin.get(`/api/auth/users?${query}`), 400, {
        code: 'validation_failed',
        fields: [field],
        context: query,
      });
    }
    for (const [query, field] of [
      ['limit=abc', 'limit'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['offset=-5', 'offset'],
      ['x=1', 'x'],
    ]) {
      assertError(await admin.get(`/api/health/history?${query}`), 400, {
        fields: [field!],
        context: `history ${query}`,
      });
    }
    assert.equal((await admin.get('/api/auth/users?limit=1&offset=0&role=admin')).status, 200, 'good parameters pass');
  });

  it('unknown routes and methods answer with the error shape too', async () => {
    assertError(await admin.get('/api/no-such-thing'), 404, { code: 'not_found' });
    assertError(await admin.get('/no-such-page'), 404, { code: 'not_found' });
    const post = await admin.post('/api/status', {});
    assertError(post, 405, { code: 'method_not_allowed' });
    assert.match(post.headers.get('allow') ?? '', /GET/);
    assertError(await admin.request('DELETE', '/api/config'), 405, { code: 'method_not_allowed' });
    assertError(await admin.request('GET', '/api/auth/login'), 405, { code: 'method_not_allowed' });
    assertError(await admin.request('PROPFIND', '/api/status'), 501, { code: 'not_implemented' });
  });

  it('a rejected write changes nothing', async () => {
    const rejected: Array<[unknown, number]> = [
      // One valid section and one invalid: all or nothing.
      [{ identity: { cell_name: 'renamed' }, network: { subnet: '8.8.8.0/24' } }, 400],
      [{ identity: { cell_name: 'renamed', domain: 'Not A Domain' } }, 400],
      [{ network: { wireguard_port: 70000, subnet: '10.9.0.0/24' } }, 400],
      [{ network: { endpoint: 'no-port', subnet: '10.9.0.0/24' } }, 400],
      [{ identity: { cell_name: 'renamed' }, unknown: true }, 400],
    ];
    for (const [body, status] of rejected) {
      assertError(await admin.put('/api/config', body), status, { context: JSON.stringify(body) });
    }
    assertError(await admin.put('/api/config', { identity: { cell_name: 'renamed' } }, { csrf: false }), 403, {
      code: 'csrf',
    });
    assertError(await ready.anon().put('/api/config', { identity: { cell_name: 'renamed' } }), 401);
    // Every rejection in this file left the config as it was, in the API and in the database.
    assert.deepEqual((await admin.get('/api/config')).body, configBefore);
    assert.deepEqual(readSettings(), settingsBefore);

    // The same update, made valid, goes through (so the checks above could have failed).
    const good = await admin.put('/api/config', {
      identity: { cell_name: 'renamed' },
      network: { subnet: '10.9.0.0/24' },
    });
    assert.equal(good.status, 200, good.text);
    assert.equal(good.body.config.identity.cell_name, 'renamed');
    assert.equal(good.body.config.network.subnet, '10.9.0.0/24');
    assert.notDeepEqual(readSettings(), settingsBefore);
  });

  it('an answer sent before the body was read closes the keep-alive connection: no request is lost', async () => {
    const { hostname, port } = new URL(ready.cell.url);
    const second = `GET /health HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`;
    const oversized = (path: string, extra: string) =>
      Buffer.concat([
        Buffer.from(
          `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${2 * MiB}\r\n${extra}\r\n`,
        ),
        Buffer.alloc(2 * MiB, 0x20),
        Buffer.from(second),
      ]);
    for (const [name, bytes] of [
      ['413 on login', oversized('/api/auth/login', '')],
      [
        '413 on an admin write',
        oversized('/api/config', `Cookie: ${admin.cookieHeader()}\r\nX-CSRF-Token: ${admin.csrf}\r\n`),
      ],
    ] as const) {
      const { text, closed } = await rawExchange(ready.cell.url, bytes);
      assert.match(text, /^HTTP\/1\.1 413 /, `${name}: the 413 arrives`);
      assert.match(text, /\r\nConnection: close\r\n/i, `${name}: it says the connection closes`);
      assert.ok(closed, `${name}: the server closes the connection instead of leaving the next request unanswered`);
    }
    // A request without a body keeps its connection: two requests, two answers, one connection.
    const { text } = await rawExchange(ready.cell.url, Buffer.from(second + second), 1500);
    assert.equal(text.match(/HTTP\/1\.1 200 /g)?.length, 2, text);
    assert.doesNotMatch(text, /Connection: close/i);
    // So does a write whose body was read, even when it is refused (a wrong password: 401).
    const login = JSON.stringify({ username: 'admin', password: 'not the password at all' });
    const write =
      `POST /api/auth/login HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(login)}\r\n\r\n${login}`;
    const kept = await rawExchange(ready.cell.url, Buffer.from(write + second), 3000);
    assert.match(kept.text, /^HTTP\/1\.1 401 /, kept.text);
    assert.match(kept.text, /HTTP\/1\.1 200 /, 'the next request on the connection is answered');
    assert.doesNotMatch(kept.text, /Connection: close/i);
  });
});
