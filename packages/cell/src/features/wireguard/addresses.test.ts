import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cellAddress, cellInterfaceAddress, nextFreeAddress, nextFreeAddresses } from './addresses.js';

describe('tunnel addresses', () => {
  it('the cell takes the first host', () => {
    assert.equal(cellAddress('10.8.0.0/24'), '10.8.0.1');
    assert.equal(cellInterfaceAddress('10.8.0.0/24'), '10.8.0.1/24');
    assert.equal(cellInterfaceAddress('172.20.0.0/16'), '172.20.0.1/16');
    assert.throws(() => cellAddress('10.8.0.0/32'), /no host addresses/);
    assert.throws(() => cellAddress('10.8.0/24'), /not an IPv4 CIDR/);
  });

  it('peers get the lowest free host after the cell, gaps are reused, addresses with /32 count as taken', () => {
    assert.equal(nextFreeAddress('10.8.0.0/24', []), '10.8.0.2');
    assert.equal(nextFreeAddress('10.8.0.0/24', ['10.8.0.2/32', '10.8.0.3']), '10.8.0.4');
    assert.equal(nextFreeAddress('10.8.0.0/24', ['10.8.0.2', '10.8.0.4']), '10.8.0.3');
    // garbage in the taken set cannot collide with a real address, so it does not stop allocation
    assert.equal(nextFreeAddress('10.8.0.0/24', ['bogus', '10.8.0.2']), '10.8.0.3');
  });

  it('never hands out the network, the broadcast or the cell address; undefined when full', () => {
    // /29: network .0, cell .1, peers .2-.6, broadcast .7
    const subnet = '192.168.7.0/29';
    const taken: string[] = [];
    for (;;) {
      const next = nextFreeAddress(subnet, taken);
      if (next === undefined) break;
      taken.push(next);
    }
    assert.deepEqual(taken, ['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6']);
    assert.equal(nextFreeAddress('10.8.0.0/30', []), '10.8.0.2', '/30: the cell and one peer');
    assert.equal(nextFreeAddress('10.8.0.0/30', ['10.8.0.2']), undefined);
    assert.equal(nextFreeAddress('10.8.0.0/31', []), undefined);
  });

  it('fills a /16 past the third octet and allocates in a few ms with 10,000 taken', () => {
    const taken = new Set<string>();
    for (let i = 2; i < 10_002; i++) taken.add(`10.9.${i >> 8}.${i & 255}`);
    assert.equal(nextFreeAddress('10.9.0.0/16', taken), '10.9.39.18'); // 10002 = 39 * 256 + 18
    // 10.9.0.255 and 10.9.1.0 are ordinary hosts inside a /16
    assert.ok(taken.has('10.9.0.255') && taken.has('10.9.1.0'));
  });

  it('hands out several addresses at once, lowest first, around the taken ones; fewer when the subnet is short', () => {
    const around = nextFreeAddresses('10.8.0.0/24', ['10.8.0.3', '10.8.0.5/32'], 4);
    assert.deepEqual(around, ['10.8.0.2', '10.8.0.4', '10.8.0.6', '10.8.0.7']);
    const short = nextFreeAddresses('192.168.7.0/29', ['192.168.7.2'], 10);
    assert.deepEqual(short, ['192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6']);
    assert.deepEqual(nextFreeAddresses('10.8.0.0/31', [], 3), []);
    assert.deepEqual(nextFreeAddresses('200.1.0.0/24', ['200.1.0.2'], 1), ['200.1.0.3'], 'first octet over 127');
  });

  it('reads taken addresses as parseIPv4 does: malformed ones (leading zeros, big octets) take nothing', () => {
    const malformed = [
      '10.8.0.02',
      '10.8.0.256',
      '10.8.0',
      '10.8.0.2.1',
      '10..0.2',
      ' 10.8.0.2',
      '10.8.0.2x',
      '010.8.0.2',
      '',
    ];
    for (const bad of malformed) {
      assert.equal(nextFreeAddress('10.8.0.0/24', [bad]), '10.8.0.2', JSON.stringify(bad));
    }
    assert.equal(nextFreeAddress('10.8.0.0/24', ['10.8.0.2/24']), '10.8.0.3', 'with a prefix');
    assert.equal(nextFreeAddress('10.8.0.0/24', ['10.9.0.2']), '10.8.0.2', 'outside the subnet');
  });
});
