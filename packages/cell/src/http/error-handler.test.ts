import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Logger } from '../lib/logger.js';
import { errorHandler } from './error-handler.js';
import { errors } from './errors.js';
import { jsonBody } from './json-body.js';

/** A logger that keeps what it was given. */
function recordingLogger() {
  const lines: Array<{ level: string; msg: string; data?: Record<string, unknown> }> = [];
  const at = (level: string) => (msg: string, data?: Record<string, unknown>) => void lines.push({ level, msg, data });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

function secretlyFailingFunction(): never {
  throw new Error('database password is hunter2 at /srv/secret/path');
}

describe('errorHandler on a real Koa server', () => {
  const { logger, lines } = recordingLogger();
  let server: Server;
  let base: string;

  before(async () => {
    const app = new Koa();
    app.silent = true;
    app.use(errorHandler(logger));
    app.use(async (ctx, next) => {
      switch (ctx.path) {
        case '/rate-limited':
          throw errors.tooManyRequests(42.2, 'slow down');
        case '/validation':
          throw errors.validation({ username: 'is required', 'network.port': 'must be >= 1' });
        case '/conflict':
          throw errors.conflict('already there');
        case '/crash':
          secretlyFailingFunction();
          break;
        case '/throw-string':
          throw 'a bare string';
        case '/library-5xx':
          throw Object.assign(new Error('upstream exploded'), { status: 502, expose: false });
        case '/library-4xx':
          throw Object.assign(new Error('Unexpected token } in JSON'), {
            status: 400,
            expose: true,
            type: 'entity.parse.failed',
          });
        case '/ok':
          ctx.body = { ok: true };
          return;
        case '/json':
          return jsonBody(ctx, async () => {
            ctx.body = { ok: true, got: (ctx.request as { body?: unknown }).body };
          });
        default:
          await next(); // nothing answers: Koa's 404
      }
    });
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(base + path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as Record<string, unknown> };
  };

  it('maps an HttpError to its status, the one JSON shape, and its headers', async () => {
    const r = await get('/rate-limited');
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '43', 'whole seconds, rounded up');
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(r.body, { ok: false, error: 'slow down', code: 'rate_limited', fields: {} });
  });

  it('keeps the fields of a validation error', async () => {
    const r = await get('/validation');
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      ok: false,
      error: 'invalid input',
      code: 'validation_failed',
      fields: { username: 'is required', 'network.port': 'must be >= 1' },
    });
    assert.equal((await get('/conflict')).status, 409);
  });

  it('an unknown error becomes a bare 500: no message, no stack; the stack goes to the log', async () => {
    const before = lines.length;
    const r = await get('/crash');
    assert.equal(r.status, 500);
    assert.deepEqual(r.body, { ok: false, error: 'internal error', code: 'internal', fields: {} });
    assert.ok(
      !r.text.includes('hunter2') && !r.text.includes('secretlyFailingFunction') && !r.text.includes('at '),
      r.text,
    );
    const logged = lines.slice(before);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.level, 'error');
    assert.equal(logged[0]!.data?.['path'], '/crash');
    assert.equal(logged[0]!.data?.['method'], 'GET');
    const stack = String(logged[0]!.data?.['error']);
    assert.match(stack, /hunter2/, 'the message is logged');
    assert.match(stack, /at secretlyFailingFunction/, 'so is the stack');
  });

  it('a thrown non-Error is a 500 too, and is logged', async () => {
    const before = lines.length;
    const r = await get('/throw-string');
    assert.equal(r.status, 500);
    assert.deepEqual(r.body, { ok: false, error: 'internal error', code: 'internal', fields: {} });
    assert.equal(lines.slice(before)[0]?.data?.['error'], 'a bare string');
  });

  it('a library error with a 5xx status is not trusted: 500 with the generic body', async () => {
    const r = await get('/library-5xx');
    assert.equal(r.status, 500);
    assert.equal(r.body['error'], 'internal error');
    assert.ok(!r.text.includes('upstream exploded'));
  });

  it("a library's 4xx is mapped to the one shape (malformed JSON → 400)", async () => {
    const r = await get('/library-4xx');
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      ok: false,
      error: 'request body is not valid JSON',
      code: 'malformed_json',
      fields: {},
    });
  });

  it('real body-parser failures come out in the one shape: malformed JSON 400, oversized 413, wrong type 415', async () => {
    const post = (body: string, type = 'application/json') =>
      get('/json', { method: 'POST', body, headers: { 'content-type': type } });
    const malformed = await post('{"a":');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body['code'], 'malformed_json');
    const big = await post(JSON.stringify({ a: 'x'.repeat(1024 * 1024 + 10) }));
    assert.equal(big.status, 413);
    assert.equal(big.body['code'], 'payload_too_large');
    const wrongType = await post('a=1', 'application/x-www-form-urlencoded');
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.body['ok'], false);
    const fine = await post('{"a":1}');
    assert.deepEqual(fine.body, { ok: true, got: { a: 1 } });
  });

  it('a status set without a body (no route: 404) gets the one shape as well', async () => {
    const r = await get('/nowhere');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { ok: false, error: 'not found', code: 'not_found', fields: {} });
  });

  it('success passes through untouched', async () => {
    const r = await get('/ok');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true });
  });
});
