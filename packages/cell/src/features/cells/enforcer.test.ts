import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../lib/logger.js';
import { findExecutable } from '../wireguard/commands.js';
import { createNetns, deleteNetns, runIn } from '../wireguard/netns.test-support.js';
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

describe('link firewall, routes and forwarding in a real network namespace', () => {
  const missing = ['ip', 'iptables', 'sysctl'].find((c) => !findExecutable(c));
  const why =
    process.platform !== 'linux'
      ? 'not Linux'
      : process.getuid?.() !== 0
        ? 'needs root'
        : missing && `'${missing}' is not installed`;
  let netns = '';
  const iface = 'piclnk0';
  const sysctl = async (key: string) => (await runIn(netns, 'sysctl', ['-n', key])).trim();
  const link = { name: 'beta', subnet: '10.82.0.0/24', policy: { mode: 'cell_only' as const }, servicePorts: [] };

  before(async () => {
    if (!why) netns = await createNetns('piccl');
  });
  after(async () => {
    if (netns) await deleteNetns(netns);
  });

  it('sets the interface forwarding for links, says why when it cannot, keeps its jumps first', async (t) => {
    if (why) return t.skip(`SKIPPED: ${why}`);
    const fw = new LinkFirewall({ iface, netns, syncPort: 7947, logger: silentLogger });
    assert.equal(fw.forwarding().state, 'not_needed');
    // no interface yet: said plainly
    await fw.apply([link], '10.81.0.0/24');
    assert.equal(fw.forwarding().state, 'failed');
    assert.match(fw.forwarding().reason!, /piclnk0 is not up yet/);

    // a veth stands in for the WireGuard interface: routes, flags and iptables treat them alike
    await runIn(netns, 'ip', ['link', 'add', iface, 'type', 'veth', 'peer', 'name', 'piclnk1']);
    for (const dev of [iface, 'piclnk1']) await runIn(netns, 'ip', ['link', 'set', dev, 'up']);
    assert.equal(await sysctl(`net.ipv4.conf.${iface}.forwarding`), '0');
    await fw.apply([link], '10.81.0.0/24');
    assert.deepEqual(fw.forwarding(), { state: 'on', setting: `net.ipv4.conf.${iface}.forwarding`, reason: null });
    assert.equal(await sysctl(`net.ipv4.conf.${iface}.forwarding`), '1');
    assert.equal(await sysctl('net.ipv4.ip_forward'), '0', 'the machine-wide switch is left alone');
    assert.match(await runIn(netns, 'ip', ['route', 'show', '10.82.0.0/24']), /dev piclnk0 proto 177/);

    // turned off behind its back (ip_forward=0 resets every interface), then a rule put above its
    // jump as a Docker engine does at start: the next apply puts both right
    await runIn(netns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
    await runIn(netns, 'sysctl', ['-q', '-w', `net.ipv4.conf.${iface}.forwarding=0`]);
    await runIn(netns, 'iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'ACCEPT']);
    await fw.apply([link], '10.81.0.0/24');
    assert.equal(await sysctl(`net.ipv4.conf.${iface}.forwarding`), '1');
    for (const hook of ['INPUT', 'FORWARD']) {
      const rules = (await runIn(netns, 'iptables', ['-w', '-S', hook])).split('\n').filter((l) => l.startsWith('-A'));
      assert.equal(rules[0], `-A ${hook} -i ${iface} -j PIC-CELLS`, rules.join('\n'));
      assert.equal(rules.filter((r) => r.includes('PIC-CELLS')).length, 1);
    }

    // no links: chain, jumps and route gone; the flag stays (the WireGuard module may use it)
    await fw.apply([], '10.81.0.0/24');
    assert.equal(fw.forwarding().state, 'not_needed');
    assert.ok(!(await runIn(netns, 'iptables', ['-w', '-S'])).includes('PIC-CELLS'));
    assert.equal((await runIn(netns, 'ip', ['route', 'show', '10.82.0.0/24'])).trim(), '');
  });
});
