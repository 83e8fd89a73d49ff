import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildCaddyConfig, CELL_ROUTE_ID, serviceRouteId } from './config.js';

const input = {
  adminSocket: '/data/caddy/admin.sock',
  adminOrigin: 'pic-cell',
  storageDir: '/data/caddy/data',
  listen: ['10.8.0.1:443'],
  domain: 'home.example.org',
  cellUpstream: '127.0.0.1:3000',
  services: [{ id: 'calendar', host: 'dav.home.example.org', dial: '127.0.0.1:49153' }],
  tls: { mode: 'internal' as const, certificatePem: 'CERT', keyPem: 'KEY' },
};

describe('Caddy JSON config', () => {
  it('keeps the admin endpoint on the unix socket (every /load replaces the whole config, admin included)', () => {
    const c = buildCaddyConfig(input) as any;
    assert.equal(c.admin.listen, 'unix//data/caddy/admin.sock');
    assert.deepEqual(c.admin.origins, ['pic-cell']);
    assert.equal(c.admin.config.persist, false);
  });

  it('routes the domain to the cell, each subdomain to its container, anything else to a 404', () => {
    const c = buildCaddyConfig(input) as any;
    const server = c.apps.http.servers.pic;
    assert.deepEqual(server.listen, ['10.8.0.1:443']);
    const [cell, service, fallback] = server.routes;
    assert.equal(cell['@id'], CELL_ROUTE_ID);
    assert.deepEqual(cell.match, [{ host: ['home.example.org'] }]);
    assert.deepEqual(cell.handle[0].upstreams, [{ dial: '127.0.0.1:3000' }]);
    assert.equal(service['@id'], serviceRouteId('calendar'));
    assert.deepEqual(service.match, [{ host: ['dav.home.example.org'] }]);
    assert.deepEqual(service.handle[0].upstreams, [{ dial: '127.0.0.1:49153' }]);
    assert.equal(fallback.handle[0].status_code, 404);
  });

  it('proxies to an upstream that speaks HTTPS over TLS, trusting the cell CA file and checking the name', () => {
    const tls = { rootCaFile: '/data/caddy/cell-ca.pem', serverName: 'dav.home.example.org' };
    const c = buildCaddyConfig({ ...input, services: [{ ...input.services[0]!, tls }] }) as any;
    const proxy = c.apps.http.servers.pic.routes[1].handle[0];
    assert.deepEqual(proxy.transport, {
      protocol: 'http',
      tls: { root_ca_pem_files: ['/data/caddy/cell-ca.pem'], server_name: 'dav.home.example.org' },
    });
    const plain = (buildCaddyConfig(input) as any).apps.http.servers.pic.routes[1].handle[0];
    assert.equal(plain.transport, undefined, 'a plain-HTTP upstream keeps the default transport');
  });

  it('serves the CA-issued certificate with automatic HTTPS off; ACME hands the names to Caddy instead', () => {
    const c = buildCaddyConfig(input) as any;
    assert.deepEqual(c.apps.http.servers.pic.automatic_https, { disable: true });
    assert.deepEqual(c.apps.tls.certificates.load_pem[0], { certificate: 'CERT', key: 'KEY', tags: ['pic-cell'] });
    const acme = buildCaddyConfig({ ...input, tls: { mode: 'acme', email: 'me@example.org' } }) as any;
    assert.equal(acme.apps.tls.certificates, undefined);
    assert.deepEqual(acme.apps.tls.automation.policies[0].subjects, ['home.example.org', 'dav.home.example.org']);
    assert.deepEqual(acme.apps.tls.automation.policies[0].issuers, [{ module: 'acme', email: 'me@example.org' }]);
  });
});
