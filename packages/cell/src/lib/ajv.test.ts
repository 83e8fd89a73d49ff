import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { compile, fieldErrors } from './ajv.js';

const Body = Type.Object(
  {
    username: Type.String({ minLength: 2, pattern: '^[a-z]+$', errorMessage: 'must be 2+ lowercase letters' }),
    age: Type.Optional(Type.Integer({ minimum: 0 })),
    network: Type.Optional(
      Type.Object(
        { port: Type.Integer({ minimum: 1, maximum: 65535 }), subnet: Type.String() },
        { additionalProperties: false },
      ),
    ),
    tags: Type.Optional(Type.Array(Type.String({ maxLength: 3 }))),
    code: Type.Optional(Type.String({ minLength: 5, pattern: '^[a-z]+$' })),
  },
  { additionalProperties: false },
);

function errorsFor(value: unknown, root?: string) {
  const validate = compile(Body);
  assert.equal(validate(value), false, 'the value should be invalid');
  return fieldErrors(validate.errors, root);
}

describe('compile', () => {
  it('compiles a schema once and reuses the validator', () => {
    assert.equal(compile(Body), compile(Body));
    assert.equal(compile(Body)({ username: 'alice' }), true);
  });
  it('never coerces types nor drops unknown fields', () => {
    const v = compile(Body);
    const input = { username: 'alice', age: '5' };
    assert.equal(v(input), false);
    assert.equal(input.age, '5', 'no coercion');
    const extra = { username: 'alice', extra: 1 };
    assert.equal(v(extra), false);
    assert.equal(extra.extra, 1, 'not removed');
  });
});

describe('fieldErrors', () => {
  it('names a missing property by its path: "is required"', () => {
    assert.deepEqual(errorsFor({}), { username: 'is required' });
    assert.deepEqual(errorsFor({ username: 'alice', network: { port: 1 } }), { 'network.subnet': 'is required' });
  });

  it('names an unknown property by its path: "is not a known field"', () => {
    assert.deepEqual(errorsFor({ username: 'alice', colour: 'red' }), { colour: 'is not a known field' });
    assert.deepEqual(errorsFor({ username: 'alice', network: { port: 1, subnet: 'x', mtu: 1400 } }), {
      'network.mtu': 'is not a known field',
    });
  });

  it("uses nested and array paths with dots, and ajv's message where no errorMessage is given", () => {
    assert.deepEqual(errorsFor({ username: 'alice', network: { port: 0, subnet: 'x' } }), {
      'network.port': 'must be >= 1',
    });
    assert.deepEqual(errorsFor({ username: 'alice', tags: ['ok', 'toolong'] }), {
      'tags.1': 'must NOT have more than 3 characters',
    });
    assert.deepEqual(errorsFor({ username: 'alice', age: 1.5 }), { age: 'must be integer' });
  });

  it("prefers the schema's errorMessage, and gives one reason per field even when several rules fail", () => {
    // "A" breaks both minLength and pattern: one entry, the schema's own words.
    assert.deepEqual(errorsFor({ username: 'A' }), { username: 'must be 2+ lowercase letters' });
    assert.deepEqual(errorsFor({ username: 42 }), { username: 'must be 2+ lowercase letters' });
    // Without an errorMessage, the first of ajv's reasons is kept, not overwritten by later ones.
    assert.deepEqual(errorsFor({ username: 'alice', code: 'AB' }), { code: 'must NOT have fewer than 5 characters' });
  });

  it('collects every invalid field at once (allErrors)', () => {
    assert.deepEqual(errorsFor({ username: 'A', age: -1, bogus: true }), {
      username: 'must be 2+ lowercase letters',
      age: 'must be >= 0',
      bogus: 'is not a known field',
    });
  });

  it('names the whole body "_body" when it is not an object, and prefixes paths with `root`', () => {
    assert.deepEqual(errorsFor('just a string'), { _body: 'must be object' });
    assert.deepEqual(errorsFor(null), { _body: 'must be object' });
    assert.deepEqual(errorsFor({ username: 'alice', age: -1 }, 'query'), { 'query.age': 'must be >= 0' });
    assert.deepEqual(errorsFor({}, 'query'), { 'query.username': 'is required' });
  });

  it('an errorMessage on the root schema names the body', () => {
    const Patch = Type.Object(
      { a: Type.Optional(Type.String()), b: Type.Optional(Type.String()) },
      { additionalProperties: false, minProperties: 1, errorMessage: 'give at least one of a, b' },
    );
    const v = compile(Patch);
    assert.equal(v({}), false);
    assert.deepEqual(fieldErrors(v.errors), { _body: 'give at least one of a, b' });
  });

  it('returns nothing for no errors', () => {
    assert.deepEqual(fieldErrors(null), {});
    assert.deepEqual(fieldErrors(undefined), {});
    assert.deepEqual(fieldErrors([]), {});
  });
});
