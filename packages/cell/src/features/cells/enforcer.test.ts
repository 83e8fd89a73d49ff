import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LinkFirewall } from './enforcer.js';

describe('link firewall rules', () => {
  const calendar = [
    { service: 'calendar', port: 5232, protocol: 'tcp' as const },
    { service: 'calendar', port: 5232, protocol: 'tcp' as const },
  ];
  const links = [
    { subnet: '10.82.0.0/24', policy: { mode: 'cell_only' as const } },
    { subnet: '10.83.0.0/24', policy: { mode: 'none' as const } },
    { subnet: '10.84.0.0/24', policy: { mode: 'services' as const, services: ['calendar'] }, servicePorts: calendar },
  ];
  const cell = { tcp: [3000, 53], udp: [53] };
  const rules = LinkFirewall.rules(links, '10.81.0.0/24', 7947, cell).map((r) => r.join(' '));

  it('lets answers through first, then per link: peer-sync from its cell, what its policy allows, a drop', () => {
    assert.deepEqual(rules, [
      '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      // cell_only: the cell itself (ping, its API, its resolver), nothing else
      '-s 10.82.0.1/32 -d 10.81.0.1/32 -p tcp --dport 7947 -j ACCEPT',
      '-s 10.82.0.0/24 -d 10.81.0.1/32 -p icmp --icmp-type echo-request -j ACCEPT',
      '-s 10.82.0.0/24 -d 10.81.0.1/32 -p tcp --dport 3000 -j ACCEPT',
      '-s 10.82.0.0/24 -d 10.81.0.1/32 -p tcp --dport 53 -j ACCEPT',
      '-s 10.82.0.0/24 -d 10.81.0.1/32 -p udp --dport 53 -j ACCEPT',
      '-s 10.82.0.0/24 -j DROP',
      // none: peer-sync only
      '-s 10.83.0.1/32 -d 10.81.0.1/32 -p tcp --dport 7947 -j ACCEPT',
      '-s 10.83.0.0/24 -j DROP',
      // services: the cell, and the named services' ports (by original destination: Docker DNATs them)
      '-s 10.84.0.1/32 -d 10.81.0.1/32 -p tcp --dport 7947 -j ACCEPT',
      '-s 10.84.0.0/24 -d 10.81.0.1/32 -p icmp --icmp-type echo-request -j ACCEPT',
      '-s 10.84.0.0/24 -d 10.81.0.1/32 -p tcp --dport 3000 -j ACCEPT',
      '-s 10.84.0.0/24 -d 10.81.0.1/32 -p tcp --dport 53 -j ACCEPT',
      '-s 10.84.0.0/24 -d 10.81.0.1/32 -p udp --dport 53 -j ACCEPT',
      '-s 10.84.0.0/24 -p tcp -m conntrack --ctorigdst 10.81.0.1/32 --ctorigdstport 5232 -j ACCEPT',
      '-s 10.84.0.0/24 -j DROP',
    ]);
  });

  it('opens no service port for cell_only, even when services are installed', () => {
    const withPorts = [{ subnet: '10.82.0.0/24', policy: { mode: 'cell_only' as const }, servicePorts: calendar }];
    const text = LinkFirewall.rules(withPorts, '10.81.0.0/24', 7947).map((r) => r.join(' '));
    assert.ok(!text.some((r) => r.includes('5232')), text.join('\n'));
  });

  it('is the same list every time (the chain is rebuilt from it: idempotent)', () => {
    assert.deepEqual(
      LinkFirewall.rules(links, '10.81.0.0/24', 7947, cell).map((r) => r.join(' ')),
      rules,
    );
  });
});
