import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  GENERATED_PASSWORD_LENGTH,
  burnPasswordCheck,
  generateLoginPassword,
  generatedPasswordBits,
  hashPassword,
  verifyPassword,
} from './password.js';

describe('hashPassword / verifyPassword (scrypt)', () => {
  it('round-trips: the right password verifies, a wrong one does not', async () => {
    const stored = await hashPassword('correct horse battery staple');
    assert.equal(await verifyPassword('correct horse battery staple', stored), true);
    assert.equal(await verifyPassword('correct horse battery stapl', stored), false);
    assert.equal(await verifyPassword('Correct horse battery staple', stored), false);
    assert.equal(await verifyPassword('', stored), false);
  });

  it('stores scrypt$N$r$p$salt$hash with a fresh salt each time, never the password', async () => {
    const a = await hashPassword('same password here');
    const b = await hashPassword('same password here');
    const parts = a.split('$');
    assert.equal(parts.length, 6);
    assert.deepEqual(parts.slice(0, 4), ['scrypt', '32768', '8', '1']);
    assert.equal(Buffer.from(parts[4]!, 'base64url').length, 16, '16-byte salt');
    assert.equal(Buffer.from(parts[5]!, 'base64url').length, 32, '32-byte key');
    assert.notEqual(a, b, 'a new salt each time');
    assert.ok(!a.includes('same password here'));
    assert.equal(await verifyPassword('same password here', b), true);
  });

  it('verifies against the parameters stored in the hash (they can be raised later)', async () => {
    const { scryptSync } = await import('node:crypto');
    const salt = Buffer.from('0123456789abcdef');
    const key = scryptSync('old-params-password', salt, 24, { N: 1024, r: 4, p: 2 });
    const stored = ['scrypt', 1024, 4, 2, salt.toString('base64url'), key.toString('base64url')].join('$');
    assert.equal(await verifyPassword('old-params-password', stored), true);
    assert.equal(await verifyPassword('other-password', stored), false);
  });

  it('normalises to NFKC: compatibility and composed/decomposed forms verify alike', async () => {
    const stored = await hashPassword('\ufb01le-caf\u00e9-password'); // "ﬁ" ligature, precomposed é
    assert.equal(await verifyPassword('file-cafe\u0301-password', stored), true); // plain "fi", e + combining acute
    assert.equal(await verifyPassword('file-cafe-password', stored), false);
  });

  it('a malformed stored hash never verifies', async () => {
    for (const bad of [
      '',
      'plaintext-password',
      'bcrypt$10$abc',
      'scrypt$32768$8$1$onlyfive',
      'scrypt$32768$8$1$a$b$c',
      'scrypt$1024$8$1$$aGFzaA',
    ]) {
      assert.equal(await verifyPassword('anything at all', bad), false, bad);
    }
    // An empty stored key would otherwise match any password (scrypt of length 0 is empty).
    assert.equal(await verifyPassword('anything', 'scrypt$32768$8$1$c2FsdA$'), false);
    // Parameters scrypt refuses answer false instead of throwing (a login must get 401, not 500).
    const key = 'aGFzaGhhc2hoYXNoaGFzaGhhc2g';
    for (const bad of [
      `scrypt$x$8$1$c2FsdA$${key}`,
      `scrypt$1000$8$1$c2FsdA$${key}`,
      `scrypt$1073741824$8$1$c2FsdA$${key}`,
      `scrypt$-4$8$1$c2FsdA$${key}`,
    ]) {
      assert.equal(await verifyPassword('x', bad), false, bad);
    }
  });

  it('burnPasswordCheck spends a real scrypt and resolves', async () => {
    const started = performance.now();
    await burnPasswordCheck('whatever');
    assert.ok(performance.now() - started > 1, 'it did work');
  });
});

describe('generated login passwords (fast hash) beside chosen ones (scrypt)', () => {
  it('a generated password carries at least 128 bits and is stored as sha256$…, never as given', async () => {
    const { password, hash } = generateLoginPassword();
    assert.equal(password.length, GENERATED_PASSWORD_LENGTH);
    assert.ok(generatedPasswordBits(password.length) >= 128, `${generatedPasswordBits(password.length)} bits`);
    assert.match(hash, /^sha256\$[A-Za-z0-9_-]{43}$/);
    assert.ok(!hash.includes(password));
    assert.notEqual(generateLoginPassword().password, password, 'a new password each time');
    assert.equal(await verifyPassword(password, hash), true);
    assert.equal(await verifyPassword(password.slice(1), hash), false);
    const otherCase = password.toLowerCase() === password ? password.toUpperCase() : password.toLowerCase();
    assert.equal(await verifyPassword(otherCase, hash), false);
  });

  it('a sha256 check still spends one scrypt, so a failed login does not tell which kind of hash it met', async () => {
    const { hash } = generateLoginPassword();
    const started = performance.now();
    assert.equal(await verifyPassword('wrong password', hash), false);
    const fastMs = performance.now() - started;
    const s2 = performance.now();
    await burnPasswordCheck('wrong password');
    const scryptMs = performance.now() - s2;
    assert.ok(fastMs > scryptMs / 4, `sha256 verify ${fastMs.toFixed(1)} ms vs scrypt ${scryptMs.toFixed(1)} ms`);
  });

  it('existing scrypt hashes keep verifying next to sha256 ones; malformed sha256 values never verify', async () => {
    const chosen = await hashPassword('a person chose this one');
    assert.ok(chosen.startsWith('scrypt$'));
    assert.equal(await verifyPassword('a person chose this one', chosen), true);
    const { password } = generateLoginPassword();
    const a = (n: number) => 'A'.repeat(n);
    const malformed = ['sha256$', 'sha256$short', `sha256$${a(42)}`, `SHA256$${a(43)}`, `sha256$${a(44)}`];
    for (const bad of malformed) {
      assert.equal(await verifyPassword(password, bad), false, bad);
    }
  });
});
