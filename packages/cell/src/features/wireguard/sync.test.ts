import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseWgQuickConfig, renderWgPeers } from './config.js';
import { planPeerSync } from './sync.js';

const key = (n: number) => Buffer.alloc(32, n).toString('base64');
const PRIV = key(9);
const PUB = key(8);
const [A, B, C, D] = [key(1), key(2), key(3), key(4)];
const PSK = key(7);
const PSK2 = key(6);

/** `wg show <iface> dump` as wg prints it: the interface line, then a line per peer. */
const dump = (...peers: string[][]) =>
  `${[[PRIV, PUB, '51820', 'off'], ...peers].map((f) => f.join('\t')).join('\n')}\n`;
const live = (publicKey: string, psk: string, allowed: string, keepalive = 'off', endpoint = '10.99.0.2:40211') => [
  publicKey,
  psk,
  endpoint,
  allowed,
  '1700000000',
  '1234',
  '5678',
  keepalive,
];

describe('planPeerSync (what apply changes on a live interface)', () => {
  it('leaves unchanged peers out entirely, whatever their endpoint, handshake or counters', () => {
    const plan = planPeerSync(
      [
        { publicKey: A, presharedKey: PSK, allowedIps: ['10.8.0.2/32'] },
        { publicKey: B, allowedIps: ['10.8.0.3/32', '10.9.0.0/24'], persistentKeepalive: 25 },
      ],
      dump(live(A, PSK, '10.8.0.2/32'), live(B, '(none)', '10.9.0.0/24,10.8.0.3/32', '25')),
    );
    assert.deepEqual(plan, { remove: [], upsert: [], missing: [] });
  });

  it('adds new peers and removes peers no longer wanted', () => {
    const c = { publicKey: C, presharedKey: PSK, allowedIps: ['10.8.0.4/32'] };
    const plan = planPeerSync(
      [{ publicKey: A, presharedKey: PSK, allowedIps: ['10.8.0.2/32'] }, c],
      dump(live(A, PSK, '10.8.0.2/32'), live(B, PSK, '10.8.0.3/32')),
    );
    assert.deepEqual(plan, { remove: [B], upsert: [c], missing: [C] });
    assert.deepEqual(planPeerSync([], dump(live(A, PSK, '10.8.0.2/32'), live(B, PSK, '10.8.0.3/32'))), {
      remove: [A, B],
      upsert: [],
      missing: [],
    });
    assert.deepEqual(planPeerSync([c], dump()), { remove: [], upsert: [c], missing: [C] });
  });

  it('updates a peer whose allowed IPs, preshared key, keepalive or configured endpoint changed', () => {
    const base = { publicKey: A, presharedKey: PSK, allowedIps: ['10.8.0.2/32'] };
    const was = dump(live(A, PSK, '10.8.0.2/32'));
    for (const changed of [
      { ...base, allowedIps: ['10.8.0.2/32', '0.0.0.0/0'] },
      { ...base, allowedIps: [] },
      { ...base, presharedKey: PSK2 },
      { ...base, persistentKeepalive: 25 },
      { ...base, endpoint: '192.0.2.1:51820' },
    ]) {
      assert.deepEqual(
        planPeerSync([changed], was),
        { remove: [], upsert: [changed], missing: [] },
        JSON.stringify(changed),
      );
    }
    // keepalive switched off: written as 0 so that addconf turns it off
    const off = { ...base, persistentKeepalive: 0 };
    assert.deepEqual(planPeerSync([off], dump(live(A, PSK, '10.8.0.2/32', '25'))), {
      remove: [],
      upsert: [off],
      missing: [],
    });
    // a peer given a preshared key it did not have
    assert.deepEqual(planPeerSync([base], dump(live(A, '(none)', '10.8.0.2/32'))), {
      remove: [],
      upsert: [base],
      missing: [],
    });
  });

  it('re-creates a peer that must lose its preshared key (wg cannot unset one through addconf)', () => {
    const bare = { publicKey: A, allowedIps: ['10.8.0.2/32'] };
    assert.deepEqual(planPeerSync([bare], dump(live(A, PSK, '10.8.0.2/32'))), {
      remove: [A],
      upsert: [bare],
      missing: [],
    });
  });

  it('compares allowed IPs as wg prints them: order and IPv4 host bits do not count as a change', () => {
    const peer = { publicKey: A, allowedIps: ['10.9.1.5/24', '10.8.0.2/32', 'FD00::2/128'] };
    assert.deepEqual(planPeerSync([peer], dump(live(A, '(none)', 'fd00::2/128,10.8.0.2/32,10.9.1.0/24'))), {
      remove: [],
      upsert: [],
      missing: [],
    });
    assert.deepEqual(planPeerSync([{ publicKey: D, allowedIps: [] }], dump(live(D, '(none)', '(none)'))), {
      remove: [],
      upsert: [],
      missing: [],
    });
  });

  it('fails on a malformed dump without quoting it (it holds preshared keys)', () => {
    const bad = `${PRIV}\t${PUB}\t51820\toff\n${A}\t${PSK}\tx\n`;
    assert.throws(
      () => planPeerSync([], bad),
      (err: Error) => /line 2 has 3 fields/.test(err.message) && !err.message.includes(PSK),
    );
  });
});

describe('renderWgPeers (wg addconf)', () => {
  it('writes peer sections only, keepalive always (0 = off), and validates every peer', () => {
    const text = renderWgPeers([
      { publicKey: A, presharedKey: PSK, allowedIps: ['10.8.0.2/32'] },
      { publicKey: B, allowedIps: ['10.8.0.3/32'], persistentKeepalive: 25 },
    ]);
    assert.ok(!text.includes('[Interface]') && !text.includes('ListenPort') && !text.includes('PrivateKey'));
    assert.equal(
      text,
      `[Peer]\nPublicKey = ${A}\nPresharedKey = ${PSK}\nAllowedIPs = 10.8.0.2/32\nPersistentKeepalive = 0\n\n[Peer]\nPublicKey = ${B}\nAllowedIPs = 10.8.0.3/32\nPersistentKeepalive = 25\n`,
    );
    // the config parser reads it back as the same peers (with an interface line added to make it a whole file)
    const parsed = parseWgQuickConfig(`[Interface]\nPrivateKey = ${PRIV}\n\n${text}`);
    assert.deepEqual(
      parsed.peers.map((p) => [p.publicKey, p.allowedIps]),
      [
        [A, ['10.8.0.2/32']],
        [B, ['10.8.0.3/32']],
      ],
    );
    assert.throws(() => renderWgPeers([{ publicKey: A, allowedIps: ['10.8.0.2/32\n[Peer]'] }]), /allowedIps/);
    assert.equal(renderWgPeers([]), '');
  });
});
