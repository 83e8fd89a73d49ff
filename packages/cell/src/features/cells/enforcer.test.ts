import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LinkFirewall } from './enforcer.js';

describe('link firewall rules', () => {
  const links = [
    { subnet: '10.82.0.0/24', policy: { mode: 'cell_only' as const } },
    { subnet: '10.83.0.0/24', policy: { mode: 'none' as const } },
  ];
  const rules = LinkFirewall.rules(links, '10.81.0.0/24', 7947).map((r) => r.join(' '));

  it('lets answers through first, then per link: peer-sync from its cell, its policy, a drop', () => {
    assert.deepEqual(rules, [
      '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-s 10.82.0.1/32 -d 10.81.0.1/32 -p tcp --dport 7947 -j ACCEPT',
      '-s 10.82.0.0/24 -d 10.81.0.1/32 -j ACCEPT',
      '-s 10.82.0.0/24 -j DROP',
      '-s 10.83.0.1/32 -d 10.81.0.1/32 -p tcp --dport 7947 -j ACCEPT',
      '-s 10.83.0.0/24 -j DROP',
    ]);
  });

  it('is the same list every time (the chain is rebuilt from it: idempotent)', () => {
    assert.deepEqual(
      LinkFirewall.rules(links, '10.81.0.0/24', 7947).map((r) => r.join(' ')),
      rules,
    );
  });
});
