import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { passwordProblem } from './password-strength.js';

describe('passwordProblem (zxcvbn-ts)', () => {
  it('refuses whitespace only, whatever the whitespace', async () => {
    for (const p of [' '.repeat(12), '\t'.repeat(12), '\u00a0\u2003\u3000 '.repeat(3), '\n'.repeat(12)]) {
      assert.equal(await passwordProblem(p), 'must not be only spaces', JSON.stringify(p));
    }
  });

  it('refuses common passwords, patterns and the user name, saying why', async () => {
    const cases: Array<[string, RegExp]> = [
      ['password1234', /close to a common password|common password/],
      ['123456789012', /common password|sequence/],
      ['qwertyuiop12', /too easy/],
      ['aaaaaaaaaaaa', /repeats a character/],
      ['abcdefghijkl', /sequence/],
      ['passwordpassword', /repeats a pattern/],
    ];
    for (const [p, why] of cases) {
      const problem = await passwordProblem(p);
      assert.ok(problem, `${p} is refused`);
      assert.match(problem, /^is too easy to guess/);
      assert.match(problem, why, p);
    }
    assert.ok(await passwordProblem('margaret-hamilton-1936', ['margaret-hamilton']), 'the user name counts');
  });

  it('accepts a long phrase of unrelated words, with or without spaces around it', async () => {
    const fine = ['correct horse battery staple', ' a brand new password ', 'peer password 1234', 'Tr0ub4dor&3-extra'];
    for (const p of fine) {
      assert.equal(await passwordProblem(p), undefined, p);
    }
  });
});
