import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isStrictDateTime } from './date-time.js';
import { ajv } from './ajv.js';

describe('strict RFC 3339 date-time', () => {
  it('accepts what RFC 3339 and Date agree on', () => {
    for (const v of [
      '2026-01-31T00:00:00Z',
      '2024-02-29T23:59:59.123Z',
      '2026-06-01T12:00:00+02:00',
      '0001-01-01T00:00:00-00:00',
      '9999-12-31T23:59:59.999999999Z',
    ]) {
      assert.ok(isStrictDateTime(v), v);
    }
  });

  it('refuses a leap second, lowercase t/z, impossible dates and times, and other shapes', () => {
    for (const v of [
      '2030-12-31T23:59:60Z', // valid RFC 3339, but Date cannot hold it
      '2016-12-31T23:59:60Z',
      '2026-01-31t00:00:00Z',
      '2026-01-31T00:00:00z',
      '2026-01-31 00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-00-01T00:00:00Z',
      '2026-01-00T00:00:00Z',
      '2026-01-31T24:00:00Z',
      '2026-01-31T00:60:00Z',
      '2026-01-31T00:00:00+24:00',
      '2026-01-31T00:00:00+02:60',
      '2026-01-31T00:00:00',
      '2026-01-31',
      '+02026-01-31T00:00:00Z',
      '2026-01-31T00:00:00.Z',
      '2026-01-31T00:00:00Z\n',
      '',
    ]) {
      assert.equal(isStrictDateTime(v), false, JSON.stringify(v));
    }
  });

  it('is the date-time format of the shared ajv', () => {
    const validate = ajv.compile({ type: 'string', format: 'date-time' });
    assert.equal(validate('2030-12-31T23:59:60Z'), false, 'a leap second passes ajv-formats alone');
    assert.equal(validate('2026-01-31t00:00:00z'), false, 'lowercase passes ajv-formats alone');
    assert.equal(validate('2026-01-31T00:00:00Z'), true);
  });
});
