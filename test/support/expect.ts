/** Assertions shared by the end-to-end tests: the one error shape, and nothing internal leaking out. */
import assert from 'node:assert/strict';
import type { ApiResponse } from './client.js';

/** Lines that look like a JavaScript stack frame ("    at fn (file.js:1:2)") or internal paths. */
const STACK_LINE = /^\s*at\s+\S.*(\(|:\d+:\d+)/m;

export function assertNoInternals(res: ApiResponse, context = '', expectedStatus?: number): void {
  const where = context ? ` (${context})` : '';
  if (expectedStatus === undefined || expectedStatus < 500)
    assert.ok(res.status < 500, `no 5xx${where}: got ${res.status} ${res.text}`);
  assert.ok(!STACK_LINE.test(res.text), `no stack trace in the body${where}: ${res.text}`);
  assert.ok(!/node_modules|\/dist\/|\.js:\d+/.test(res.text), `no internal paths in the body${where}: ${res.text}`);
}

/**
 * The error shape: `{"ok":false,"error":"…","code":"…","fields":{…}}`, JSON content type, the
 * expected status and (optionally) code and named fields.
 */
export function assertError(
  res: ApiResponse,
  status: number,
  opts: { code?: string; fields?: string[]; context?: string } = {},
): void {
  const where = opts.context ? ` (${opts.context})` : '';
  assert.equal(res.status, status, `status${where}: ${res.text}`);
  assertNoInternals(res, opts.context, status);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `JSON content type${where}`);
  assert.ok(
    res.body && typeof res.body === 'object' && !Array.isArray(res.body),
    `a JSON object body${where}: ${res.text}`,
  );
  assert.equal(res.body.ok, false, `ok:false${where}`);
  assert.equal(typeof res.body.error, 'string', `error is a message${where}`);
  assert.ok(res.body.error.length > 0, `error is not empty${where}`);
  assert.equal(typeof res.body.code, 'string', `code is a string${where}`);
  assert.ok(
    res.body.fields && typeof res.body.fields === 'object' && !Array.isArray(res.body.fields),
    `fields is an object${where}`,
  );
  if (opts.code !== undefined) assert.equal(res.body.code, opts.code, `code${where}: ${res.text}`);
  for (const field of opts.fields ?? []) {
    assert.equal(typeof res.body.fields[field], 'string', `fields names "${field}"${where}: ${res.text}`);
  }
}

/** The three RateLimit-* headers, as integers; asserts they are present and well-formed. */
export function rateLimitHeaders(res: ApiResponse): { limit: number; remaining: number; reset: number } {
  const read = (name: string) => {
    const value = res.headers.get(name);
    assert.ok(value !== null, `${name} header present (status ${res.status})`);
    assert.match(value, /^\d+$/, `${name} is a non-negative integer`);
    return Number(value);
  };
  return { limit: read('RateLimit-Limit'), remaining: read('RateLimit-Remaining'), reset: read('RateLimit-Reset') };
}
