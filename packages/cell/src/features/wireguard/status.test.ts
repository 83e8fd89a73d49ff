import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseWgShowDump } from './status.js';

const PRIV = Buffer.alloc(32, 9).toString('base64');
const PUB = Buffer.alloc(32, 8).toString('base64');
const P1 = Buffer.alloc(32, 1).toString('base64');
const P2 = Buffer.alloc(32, 2).toString('base64');
const PSK = Buffer.alloc(32, 7).toString('base64');

describe('parseWgShowDump', () => {
  it('reads interface and peers, and drops the private and preshared keys', () => {
    const dump = [
      [PRIV, PUB, '51820', 'off'].join('\t'),
      [P1, PSK, '10.99.0.2:40211', '10.8.0.2/32', '1700000000', '1234', '5678', '25'].join('\t'),
      [P2, '(none)', '(none)', '(none)', '0', '0', '0', 'off'].join('\t'),
      '',
    ].join('\n');
    const parsed = parseWgShowDump(dump);
    assert.deepEqual(parsed, {
      publicKey: PUB,
      listenPort: 51820,
      peers: [
        {
          publicKey: P1,
          endpoint: '10.99.0.2:40211',
          allowedIps: ['10.8.0.2/32'],
          latestHandshake: new Date(1_700_000_000_000),
          rxBytes: 1234,
          txBytes: 5678,
          persistentKeepalive: 25,
        },
        {
          publicKey: P2,
          endpoint: null,
          allowedIps: [],
          latestHandshake: null,
          rxBytes: 0,
          txBytes: 0,
          persistentKeepalive: null,
        },
      ],
    });
    assert.ok(!JSON.stringify(parsed).includes(PRIV) && !JSON.stringify(parsed).includes(PSK));
  });

  it('fails on a malformed dump without quoting it (it holds secrets)', () => {
    const bad = [[PRIV, PUB, '51820', 'off'].join('\t'), [P1, PSK, 'x', 'y'].join('\t')].join('\n');
    assert.throws(
      () => parseWgShowDump(bad),
      (err: Error) => /line 2 has 4 fields/.test(err.message) && !err.message.includes(PSK),
    );
    assert.throws(() => parseWgShowDump(''), /interface line/);
    assert.throws(
      () => parseWgShowDump(`${PRIV}\t${PUB}\t51820\toff\n${P1}\t${PSK}\t(none)\t(none)\tsoon\t0\t0\toff`),
      /latest handshake is not a number/,
    );
  });
});
