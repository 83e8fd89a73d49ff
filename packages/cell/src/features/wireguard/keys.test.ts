import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { assertWireGuardKey, generateKeyPair, generatePresharedKey, isWireGuardKey, publicKeyOf } from './keys.js';
import { findExecutable } from './commands.js';

const wg = findExecutable('wg');
const wgRun = (args: string[], input: string) => execFileSync(wg!, args, { input, encoding: 'utf8' }).trim();

describe('WireGuard keys', () => {
  it('generates base64 keys of 32 bytes, clamped like wg genkey, each pair different', () => {
    const pairs = Array.from({ length: 50 }, generateKeyPair);
    for (const { privateKey, publicKey } of pairs) {
      assert.ok(isWireGuardKey(privateKey) && isWireGuardKey(publicKey));
      const raw = Buffer.from(privateKey, 'base64');
      assert.equal(raw.length, 32);
      assert.equal(raw[0]! & 7, 0, 'low 3 bits cleared');
      assert.equal(raw[31]! & 0xc0, 0x40, 'top bit cleared, second-top bit set');
      assert.equal(publicKeyOf(privateKey), publicKey);
    }
    assert.equal(new Set(pairs.map((p) => p.privateKey)).size, 50);
    assert.equal(new Set(pairs.map((p) => p.publicKey)).size, 50);
  });

  it('derives the RFC 7748 test vector public key (Alice)', () => {
    const alicePrivate = Buffer.from(
      '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
      'hex',
    ).toString('base64');
    const alicePublic = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString(
      'base64',
    );
    assert.equal(publicKeyOf(alicePrivate), alicePublic);
  });

  it('gives the same public key as `wg pubkey`, and reads keys `wg genkey` made', (t) => {
    if (!wg)
      return t.skip(
        "SKIPPED: 'wg' (wireguard-tools) is not installed, so interop with wg pubkey cannot be checked here",
      );
    for (let i = 0; i < 10; i++) {
      const ours = generateKeyPair();
      assert.equal(wgRun(['pubkey'], `${ours.privateKey}\n`), ours.publicKey);
      const theirs = wgRun(['genkey'], '');
      assert.ok(isWireGuardKey(theirs));
      assert.equal(publicKeyOf(theirs), wgRun(['pubkey'], `${theirs}\n`));
    }
    const psk = generatePresharedKey();
    // wg accepts our PSK format: `wg pubkey` parses any 32-byte base64 key and fails on anything else.
    assert.ok(isWireGuardKey(wgRun(['pubkey'], `${psk}\n`)));
  });

  it('preshared keys are 32 random bytes in base64', () => {
    const psks = Array.from({ length: 20 }, generatePresharedKey);
    for (const psk of psks) {
      assert.equal(Buffer.from(psk, 'base64').length, 32);
      assert.ok(isWireGuardKey(psk));
    }
    assert.equal(new Set(psks).size, 20);
  });

  it('rejects anything that is not canonical base64 of 32 bytes', () => {
    const good = generateKeyPair().publicKey;
    const bad = [
      '',
      good.slice(0, -1),
      `${good}=`,
      `${good.slice(0, -1)}A`,
      good.replace(/=$/, ''),
      ` ${good}`,
      `${good}\n`,
      `${good.slice(0, 43)}\n`,
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      `${good.slice(0, 42)}B=`, // non-zero padding bits: not what a 32-byte key encodes to
      good.replace(/[A-Za-z]/, '-'),
      'x'.repeat(44),
      null,
      undefined,
      42,
    ];
    for (const b of bad) assert.equal(isWireGuardKey(b), false, JSON.stringify(b));
    assert.throws(() => publicKeyOf('not a key'), /private key is not a WireGuard key/);
    const secretLooking = `${good.slice(0, 43)}!`;
    assert.throws(
      () => assertWireGuardKey(secretLooking, 'psk'),
      (err: Error) => !err.message.includes(secretLooking.slice(0, 20)),
      'the message never echoes the value',
    );
  });
});
