import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordProblems, renderDnsmasqConfig } from './config.js';

const base = { listen: '10.8.0.1', port: 53, domain: 'home.example.org', upstreams: ['1.1.1.1'], records: [] };

describe('the resolver config (dnsmasq)', () => {
  it('answers the domain and every name under it with the tunnel address, forwards the rest', () => {
    const text = renderDnsmasqConfig(base);
    const lines = text.trim().split('\n');
    assert.ok(lines.includes('listen-address=10.8.0.1'));
    assert.ok(lines.includes('address=/home.example.org/10.8.0.1'));
    assert.ok(lines.includes('server=1.1.1.1'));
    assert.ok(lines.includes('no-resolv'));
  });

  it('writes each record kind on its own line', () => {
    const text = renderDnsmasqConfig({
      ...base,
      records: [
        { name: 'nas.home.example.org', type: 'A', value: '10.0.0.5' },
        { name: 'nas.home.example.org', type: 'AAAA', value: 'fd00::5' },
        { name: 'files.home.example.org', type: 'CNAME', value: 'nas.home.example.org' },
        { name: '_note.home.example.org', type: 'TXT', value: 'a, b' },
      ],
    });
    assert.match(text, /^host-record=nas\.home\.example\.org,10\.0\.0\.5$/m);
    assert.match(text, /^host-record=nas\.home\.example\.org,fd00::5$/m);
    assert.match(text, /^cname=files\.home\.example\.org,nas\.home\.example\.org$/m);
    assert.match(text, /^txt-record=_note\.home\.example\.org,"a, b"$/m);
  });

  it('refuses names and values with line breaks, quotes, backslashes or control characters', () => {
    const bad = [
      { name: 'a.home.example.org\nserver=6.6.6.6', type: 'A', value: '10.0.0.1' },
      { name: 'a.home.example.org', type: 'A', value: '10.0.0.1\naddress=/#/6.6.6.6' },
      { name: 'a.home.example.org', type: 'TXT', value: 'x"\naddress=/#/6.6.6.6' },
      { name: 'a.home.example.org', type: 'TXT', value: 'back\\slash' },
      { name: 'a.home.example.org', type: 'TXT', value: 'nul\u0000' },
      { name: 'A.Home.example.org', type: 'A', value: '10.0.0.1' },
      { name: 'a.home.example.org', type: 'CNAME', value: 'x y' },
      { name: 'a.home.example.org', type: 'AAAA', value: '10.0.0.1' },
      { name: 'a.home.example.org', type: 'MX', value: 'x' },
    ];
    for (const r of bad) {
      assert.notDeepEqual(recordProblems(r), {}, JSON.stringify(r));
      assert.throws(() => renderDnsmasqConfig({ ...base, records: [r as never] }), /refusing/, JSON.stringify(r));
    }
    assert.throws(() => renderDnsmasqConfig({ ...base, domain: 'x\nserver=1.2.3.4' }));
    assert.throws(() => renderDnsmasqConfig({ ...base, upstreams: ['1.1.1.1\nx'] }));
  });
});
