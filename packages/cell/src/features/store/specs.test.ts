import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderTemplate } from '@pic/manifest';
import { containerSpec, reservedPortProblems } from './specs.js';
import { demoManifest } from './fixtures.test-support.js';

describe('host ports of a service', () => {
  const withHostPorts = (...hosts: Array<[number, 'tcp' | 'udp']>) => {
    const m = structuredClone(demoManifest());
    const published = hosts.map(([host, protocol], i) => ({ container: 9000 + i, protocol, host }));
    m.containers[0]!.ports = [{ container: 8080, protocol: 'tcp' }, ...published];
    return m;
  };
  const values = { domain: 'cell.lan', subdomain: 'demo', secrets: { token: 't' } };

  it('are published on the address the cell chooses, never on every address', () => {
    const m = withHostPorts([993, 'tcp'], [5353, 'udp']);
    const spec = containerSpec('c0ffee000000', m, m.containers[0]!, 'sha256:x', values, renderTemplate);
    assert.deepEqual(spec.ports, [
      { containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 },
      { containerPort: 9000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 },
      { containerPort: 9000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 993 },
      { containerPort: 9001, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5353 },
    ]);
    assert.ok(!spec.ports!.some((p) => p.hostIp === '0.0.0.0'));
    const onTunnel = containerSpec('c0ffee000000', m, m.containers[0]!, 'sha256:x', values, renderTemplate, [
      '10.8.0.1',
    ]);
    assert.deepEqual(
      onTunnel.ports!.filter((p) => p.hostPort !== 0).map((p) => p.hostIp),
      ['10.8.0.1', '10.8.0.1'],
    );
    // Several addresses: each fixed host port is published on every one (one engine binding each).
    const both = containerSpec('c0ffee000000', m, m.containers[0]!, 'sha256:x', values, renderTemplate, [
      '127.0.0.1',
      '10.8.0.1',
    ]);
    assert.deepEqual(
      both.ports!.filter((p) => p.hostPort !== 0).map((p) => `${p.hostIp}:${p.hostPort}/${p.protocol}`),
      ['127.0.0.1:993/tcp', '10.8.0.1:993/tcp', '127.0.0.1:5353/udp', '10.8.0.1:5353/udp'],
    );
  });

  it('may not be one the cell uses: its WireGuard port, its API port, SSH, DNS, HTTP(S)', () => {
    const cell = { wireguardPort: 51820, apiPort: 3000 };
    assert.deepEqual(reservedPortProblems(withHostPorts([993, 'tcp'], [5353, 'udp']), cell), {});
    const all = withHostPorts([51820, 'udp'], [3000, 'tcp'], [22, 'tcp'], [53, 'udp'], [80, 'tcp'], [443, 'tcp']);
    const problems = reservedPortProblems(all, cell);
    assert.deepEqual(
      Object.keys(problems),
      [1, 2, 3, 4, 5, 6].map((j) => `containers.0.ports.${j}.host`),
    );
    assert.match(problems['containers.0.ports.1.host']!, /51820 is used by this cell \(the cell's WireGuard/);
    assert.match(problems['containers.0.ports.2.host']!, /3000 is used by this cell \(the cell's API port\)/);
  });
});
