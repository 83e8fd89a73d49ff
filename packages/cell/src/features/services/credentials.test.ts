import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseManifest, renderTemplate } from '@pic/manifest';
import { fillCredentials } from './credentials.js';

const manifest = (id: string) =>
  parseManifest(readFileSync(fileURLToPath(new URL(`../../../../../manifests/${id}.yaml`, import.meta.url))));
const values = { username: 'alice', password: 'pw', domain: 'home.example.org' };

describe('filled credentials', () => {
  it("name the service's own TLS port when Caddy does not serve its subdomain", () => {
    const [caldav, carddav] = fillCredentials(manifest('calendar'), values, renderTemplate);
    assert.deepEqual(
      [caldav!.host, caldav!.port, caldav!.security, caldav!.path],
      ['dav.home.example.org', 5232, 'tls', '/alice/'],
    );
    assert.equal(carddav!.port, 5232);
    assert.equal(fillCredentials(manifest('files'), values, renderTemplate)[0]!.port, 8443);
  });

  it("name Caddy's HTTPS port for the web endpoint when Caddy serves it (what a phone over the tunnel uses)", () => {
    const cal = fillCredentials(manifest('calendar'), values, renderTemplate, 443);
    assert.deepEqual(
      cal.map((c) => [c.protocol, c.host, c.port, c.security]),
      [
        ['caldav', 'dav.home.example.org', 443, 'tls'],
        ['carddav', 'dav.home.example.org', 443, 'tls'],
      ],
    );
    const [files] = fillCredentials(manifest('files'), values, renderTemplate, 8444);
    assert.deepEqual([files!.host, files!.port, files!.path], ['files.home.example.org', 8444, '/alice/']);
  });

  it('leave mail alone: IMAP and SMTP are not HTTP, and the email manifest has no web endpoint', () => {
    const mail = fillCredentials(manifest('email'), values, renderTemplate, 443);
    assert.deepEqual(
      mail.map((c) => [c.protocol, c.host, c.port, c.security]),
      [
        ['imap', 'mail.home.example.org', 993, 'tls'],
        ['smtp', 'mail.home.example.org', 587, 'starttls'],
      ],
    );
  });
});
