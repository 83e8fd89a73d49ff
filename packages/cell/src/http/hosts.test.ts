import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KnownHosts, normalHost } from './hosts.js';

describe('normalHost', () => {
  it('lowercases, drops a trailing dot, brackets IPv6, refuses what is no name or address', () => {
    assert.equal(normalHost('Cell.Example.NET.'), 'cell.example.net');
    assert.equal(normalHost('::1'), '[::1]');
    assert.equal(normalHost('[::1]'), '[::1]');
    assert.equal(normalHost('192.168.1.10'), '192.168.1.10');
    for (const bad of ['', 'a/b', 'evil.example:80', 'a..b', '-x.example', '[::1', '1.2.3.999']) {
      assert.equal(normalHost(bad), undefined, bad);
    }
  });
});

describe('KnownHosts', () => {
  const known = new KnownHosts(['192.168.1.10', 'extra.example']);
  known.setCellNames('home.example.org', '10.8.0.1');

  it('knows loopback, the fixed names, the domain and its subdomains and the WireGuard address, on any port', () => {
    for (const host of [
      'localhost',
      'localhost:3000',
      '127.0.0.1:1',
      '[::1]:3000',
      '[::1]',
      '192.168.1.10:443',
      'extra.example',
      'home.example.org',
      'a.b.home.example.org:8443',
      '10.8.0.1',
    ]) {
      assert.equal(known.knowsHostHeader(host), true, host);
    }
  });

  it('refuses other names, look-alikes and malformed values', () => {
    for (const host of [
      undefined,
      '',
      'evil.example',
      'evilhome.example.org',
      'home.example.org.evil.example',
      'sub.extra.example',
      '10.8.0.2',
      'localhost:abc',
      'localhost:3000:1',
      '[::1]x',
      '[::2]:3000',
      'user@localhost',
    ]) {
      assert.equal(known.knowsHostHeader(host), false, String(host));
    }
  });

  it('checks an Origin by its host; "null", other schemes and odd spellings are refused', () => {
    assert.equal(known.knowsOrigin('http://localhost:5173'), true);
    assert.equal(known.knowsOrigin('https://console.home.example.org'), true);
    const refused = ['null', 'http://evil.example', 'file://localhost', 'http://localhost/path', 'ws://localhost', 'x'];
    for (const origin of refused) {
      assert.equal(known.knowsOrigin(origin), false, origin);
    }
  });

  it('a changed domain replaces the old one at once', () => {
    const k = new KnownHosts([]);
    k.setCellNames('old.example', '10.1.0.1');
    assert.equal(k.knowsHostHeader('old.example'), true);
    k.setCellNames('new.example', '10.2.0.1');
    assert.equal(k.knowsHostHeader('old.example'), false);
    assert.equal(k.knowsHostHeader('10.1.0.1'), false);
    assert.equal(k.knowsHostHeader('www.new.example'), true);
  });
});
