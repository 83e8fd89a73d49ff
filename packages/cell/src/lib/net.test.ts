import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  endpointProblem,
  formatIPv4,
  isDnsLabel,
  isDnsName,
  isPrivateCidr,
  maskOf,
  parseCidr,
  parseIPv4,
  subnetProblem,
} from './net.js';

describe('parseIPv4 / formatIPv4', () => {
  it('parses dotted quads to unsigned 32-bit numbers and back', () => {
    assert.equal(parseIPv4('0.0.0.0'), 0);
    assert.equal(parseIPv4('10.8.0.1'), 0x0a080001);
    assert.equal(parseIPv4('192.168.1.254'), 0xc0a801fe);
    assert.equal(parseIPv4('255.255.255.255'), 0xffffffff, 'no sign bit: the result is unsigned');
    for (const ip of ['0.0.0.0', '1.2.3.4', '172.31.255.0', '255.255.255.255'])
      assert.equal(formatIPv4(parseIPv4(ip)!), ip);
  });

  it('rejects octets above 255, leading zeros, wrong counts, spaces and other characters', () => {
    for (const bad of [
      '256.0.0.1',
      '1.2.3.999',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '1.2.3.4\n',
      '+1.2.3.4',
      '1.2.3.-4',
      '0x1.2.3.4',
      '1.2.3.4/24',
      '१.२.३.४',
      'a.b.c.d',
      '1234.1.1.1',
    ]) {
      assert.equal(parseIPv4(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('parseCidr / maskOf', () => {
  it('parses address and prefix', () => {
    assert.deepEqual(parseCidr('10.8.0.0/24'), { network: 0x0a080000, prefix: 24 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { network: 0, prefix: 0 });
    assert.deepEqual(parseCidr('1.2.3.4/32'), { network: 0x01020304, prefix: 32 });
  });

  it('rejects a missing or out-of-range prefix and extra parts', () => {
    for (const bad of [
      '10.8.0.0',
      '10.8.0.0/',
      '10.8.0.0/33',
      '10.8.0.0/-1',
      '10.8.0.0/24/1',
      '10.8.0.0/123',
      '10.8.0/24',
      '/24',
      '10.8.0.0/2 4',
      '10.8.0.0/x',
    ]) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
  });

  it('masks have the prefix bits set, unsigned', () => {
    assert.equal(maskOf(0), 0);
    assert.equal(maskOf(8), 0xff000000);
    assert.equal(maskOf(24), 0xffffff00);
    assert.equal(maskOf(31), 0xfffffffe);
    assert.equal(maskOf(32), 0xffffffff);
  });
});

describe('isPrivateCidr', () => {
  const priv = (text: string) => isPrivateCidr(parseCidr(text)!);
  it('accepts networks inside 10/8, 172.16/12 and 192.168/16, including the ranges themselves', () => {
    for (const ok of [
      '10.0.0.0/8',
      '10.255.255.0/24',
      '172.16.0.0/12',
      '172.31.0.0/16',
      '192.168.0.0/16',
      '192.168.100.0/29',
    ]) {
      assert.equal(priv(ok), true, ok);
    }
  });
  it('rejects public space, neighbours of the ranges, and networks wider than the range', () => {
    for (const bad of [
      '8.8.8.0/24',
      '11.0.0.0/8',
      '9.255.255.0/24',
      '172.15.0.0/16',
      '172.32.0.0/16',
      '192.167.0.0/16',
      '192.169.0.0/16',
      '100.64.0.0/16',
      '169.254.0.0/16',
      '127.0.0.0/8',
      '10.0.0.0/7',
      '172.16.0.0/11',
      '192.168.0.0/15',
      '0.0.0.0/0',
    ]) {
      assert.equal(priv(bad), false, bad);
    }
  });
});

describe('subnetProblem', () => {
  it('accepts private networks of /16 to /29 with no host bits', () => {
    for (const ok of ['10.8.0.0/24', '10.8.0.0/16', '192.168.1.8/29', '172.20.0.0/16', '172.31.255.248/29']) {
      assert.equal(subnetProblem(ok), undefined, ok);
    }
  });
  it('names what is wrong: syntax, prefix range, host bits (suggesting the network), public range', () => {
    assert.match(subnetProblem('10.8.0.0')!, /CIDR/);
    assert.match(subnetProblem('nonsense')!, /CIDR/);
    assert.match(subnetProblem('10.0.0.0/8')!, /\/16 to \/29/);
    assert.match(subnetProblem('10.0.0.0/15')!, /\/16 to \/29/);
    assert.match(subnetProblem('10.8.0.0/30')!, /\/16 to \/29/);
    assert.equal(subnetProblem('10.8.0.1/24'), 'host bits are set; did you mean 10.8.0.0/24?');
    assert.equal(subnetProblem('192.168.1.9/29'), 'host bits are set; did you mean 192.168.1.8/29?');
    assert.match(subnetProblem('8.8.8.0/24')!, /private range/);
    assert.match(subnetProblem('100.64.0.0/16')!, /private range/);
  });
  it('honours custom prefix bounds', () => {
    assert.equal(subnetProblem('10.0.0.0/8', 8, 30), undefined);
    assert.match(subnetProblem('10.8.0.0/24', 8, 20)!, /\/8 to \/20/);
  });
});

describe('isDnsName / isDnsLabel', () => {
  it('accepts lowercase names of letters, digits and inner hyphens', () => {
    for (const ok of [
      'home.example.org',
      'localhost',
      'a.b',
      'xn--bcher-kva.example',
      'cell-1.home.lan',
      '1.example.org',
      'a1',
    ]) {
      assert.equal(isDnsName(ok), true, ok);
    }
  });
  it('rejects uppercase, empty labels, edge hyphens, other characters and numeric top-level labels', () => {
    for (const bad of [
      '',
      'Home.example.org',
      'a..b',
      '.example.org',
      'example.org.',
      '-a.example.org',
      'a-.example.org',
      'a_b.example.org',
      'a b.org',
      'exa mple',
      'ex@mple.org',
      '1.2.3.4',
      'example.123',
      'é.example.org',
    ]) {
      assert.equal(isDnsName(bad), false, JSON.stringify(bad));
    }
  });
  it('limits a label to 63 characters and the name to 253', () => {
    const l63 = 'a'.repeat(63);
    assert.equal(isDnsName(`${l63}.org`), true);
    assert.equal(isDnsName(`${'a'.repeat(64)}.org`), false);
    const name253 = [l63, l63, l63, 'a'.repeat(61)].join('.');
    assert.equal(name253.length, 253);
    assert.equal(isDnsName(name253), true);
    assert.equal(isDnsName(`${name253}a`), false);
  });
  it('a label is one DNS name part', () => {
    assert.equal(isDnsLabel('mycell'), true);
    assert.equal(isDnsLabel('my-cell-2'), true);
    assert.equal(isDnsLabel('my.cell'), false);
    assert.equal(isDnsLabel('-cell'), false);
    assert.equal(isDnsLabel('Cell'), false);
    assert.equal(isDnsLabel(''), false);
    assert.equal(isDnsLabel('a'.repeat(64)), false);
  });
});

describe('endpointProblem', () => {
  it('accepts DNS names, IPv4 addresses and bracketed IPv6 literals with a port 1-65535', () => {
    for (const ok of [
      'vpn.example.org:51820',
      'localhost:1',
      '203.0.113.7:65535',
      '[2001:db8::1]:51820',
      '[::1]:443',
    ]) {
      assert.equal(endpointProblem(ok), undefined, ok);
    }
  });
  it('rejects a missing or bad port', () => {
    assert.match(endpointProblem('vpn.example.org')!, /host:port/);
    assert.match(endpointProblem('vpn.example.org:')!, /host:port/);
    assert.match(endpointProblem('vpn.example.org:0')!, /1-65535/);
    assert.match(endpointProblem('vpn.example.org:65536')!, /1-65535/);
    assert.match(endpointProblem('vpn.example.org:123456')!, /host:port/);
    assert.match(endpointProblem('vpn.example.org:80x')!, /host:port/);
  });
  it('rejects bad hosts: invalid IPv4, uppercase or odd names, spaces, unbracketed IPv6', () => {
    assert.match(endpointProblem('1.2.3.256:51820')!, /IPv4/);
    assert.match(endpointProblem('1.2.3:51820')!, /IPv4/);
    assert.match(endpointProblem('VPN.example.org:51820')!, /DNS name/);
    assert.match(endpointProblem('vpn_1.example.org:51820')!, /DNS name/);
    assert.notEqual(endpointProblem('vpn example.org:51820'), undefined);
    assert.notEqual(endpointProblem('2001:db8::1:51820'), undefined);
    assert.notEqual(endpointProblem('[zz::1]:51820'), undefined);
    assert.notEqual(endpointProblem(':51820'), undefined);
    for (const bad of ['[.]:51820', '[:]:1', '[1.2.3.999]:51820']) assert.match(endpointProblem(bad)!, /IPv6/, bad);
  });
});
