import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestError } from './errors.js';
import { parseManifest, validateManifest } from './manifest.js';
import { CatalogIndexSchema, ServiceManifestSchema } from './schema.js';
import { clone, REPO_ROOT, validManifest } from './fixtures.test-support.js';

/** The field errors a manifest produces; fails the test when the manifest is accepted. */
function fieldsOf(data: unknown): Record<string, string> {
  try {
    validateManifest(data);
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    return err.fields;
  }
  assert.fail('the manifest was accepted');
}

/** Breaks a copy of the valid manifest and checks the error names `path` with a reason matching `reason`. */
function rejects(path: string, reason: RegExp, mutate: (m: any) => void) {
  const m = clone(validManifest()) as any;
  mutate(m);
  const fields = fieldsOf(m);
  assert.ok(path in fields, `expected an error at ${path}, got ${JSON.stringify(fields)}`);
  assert.match(fields[path]!, reason);
}

describe('manifest schema', () => {
  it('accepts a manifest that uses every field', () => {
    const m = validManifest();
    assert.deepEqual(validateManifest(clone(m)), m);
  });

  it("accepts every first-party manifest in manifests/, and the tests' test-echo in test/catalog/manifests/", () => {
    const dir = join(REPO_ROOT, 'manifests');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(!files.includes('test-echo.yaml'), "test-echo is the tests' service, not the user's");
    for (const [d, f] of [
      ...files.map((x) => [dir, x]),
      [join(REPO_ROOT, 'test', 'catalog', 'manifests'), 'test-echo.yaml'],
    ] as const) {
      const m = parseManifest(readFileSync(join(d, f)), f);
      assert.equal(`${m.id}.yaml`, f, 'a manifest file is named after its id');
    }
  });

  it('documents every field with a description', () => {
    const missing: string[] = [];
    const walk = (schema: any, path: string) => {
      if (!schema || typeof schema !== 'object') return;
      for (const [k, sub] of Object.entries<any>(schema.properties ?? {})) {
        if (typeof sub.description !== 'string' || sub.description.length < 3) missing.push(`${path}.${k}`);
        walk(sub, `${path}.${k}`);
      }
      for (const [k, sub] of Object.entries<any>(schema.patternProperties ?? {})) {
        if (typeof sub.description !== 'string') missing.push(`${path}[${k}]`);
        walk(sub, `${path}[*]`);
      }
      if (schema.items) {
        if (typeof schema.items.description !== 'string') missing.push(`${path}[]`);
        walk(schema.items, `${path}[]`);
      }
    };
    walk(ServiceManifestSchema, 'manifest');
    walk(CatalogIndexSchema, 'index');
    assert.deepEqual(missing, []);
  });

  it('names unknown fields, at the top and nested', () => {
    rejects('extra', /not a known field/, (m) => (m.extra = 1));
    rejects('containers.0.privileged', /not a known field/, (m) => (m.containers[0].privileged = true));
    rejects(
      'accounts.list.exec.shell',
      /not a known field/,
      (m) => (m.accounts.list = { exec: { container: 'app', argv: ['x'], shell: 'sh -c' }, output: 'lines' }),
    );
  });

  it('names missing required fields', () => {
    rejects('version', /required/, (m) => delete m.version);
    rejects('containers.1.healthcheck', /required/, (m) => delete m.containers[1].healthcheck);
  });

  it("requires DNS-label ids and subdomains and refuses the cell's own API areas", () => {
    rejects('id', /DNS label/, (m) => (m.id = 'Demo_App'));
    rejects('id', /DNS label/, (m) => (m.id = '-demo'));
    rejects('id', /reserved/, (m) => (m.id = 'store'));
    rejects('subdomain', /DNS label/, (m) => (m.subdomain = 'a.b'));
  });

  it('requires a semantic version', () => {
    for (const bad of ['1.2', 'v1.2.3', '01.2.3', '1.2.3-', 'latest'])
      rejects('version', /semantic version/, (m) => (m.version = bad));
    for (const good of ['0.0.1', '1.2.3-rc.1', '1.2.3+build.5', '10.20.30-alpha.beta+exp.sha.5114f85']) {
      const m = validManifest();
      m.version = good;
      assert.equal(validateManifest(m).version, good);
    }
  });

  it('refuses unknown or repeated capabilities', () => {
    rejects('capabilities.1', /must be one of: accounts, webdav/, (m) => (m.capabilities = ['accounts', 'ftp']));
    rejects('capabilities', /duplicate/, (m) => (m.capabilities = ['accounts', 'accounts']));
    rejects('accounts', /required with the accounts capability/, (m) => {
      m.capabilities = ['accounts'];
      delete m.accounts;
      delete m.credentials;
      m.routes = [];
    });
    rejects('capabilities', /must include accounts/, (m) => (m.capabilities = ['http']));
  });

  it('refuses image references that are not pinned by a sha256 digest', () => {
    rejects('containers.0.image', /pinned by digest/, (m) => (m.containers[0].image = 'pic/demo:1.2'));
    rejects('containers.0.image', /pinned by digest/, (m) => (m.containers[0].image = 'pic/demo'));
    rejects(
      'containers.0.image',
      /pinned by digest/,
      (m) => (m.containers[0].image = `pic/demo@sha256:${'a'.repeat(63)}`),
    );
    rejects(
      'containers.0.image',
      /pinned by digest/,
      (m) => (m.containers[0].image = `pic/demo@sha256:${'A'.repeat(64)}`),
    );
    rejects(
      'containers.0.image',
      /pinned by digest/,
      (m) => (m.containers[0].image = `pic/demo@sha512:${'a'.repeat(128)}`),
    );
  });

  it('keeps secrets out of env values', () => {
    rejects(
      'containers.0.env.DEMO_DB_PASSWORD',
      /exactly one \{\{secret:NAME\}\}/,
      (m) => (m.containers[0].env.DEMO_DB_PASSWORD = 'hunter2'),
    );
    rejects(
      'containers.0.env.API_TOKEN',
      /no secrets inline/,
      (m) => (m.containers[0].env.API_TOKEN = 'x{{secret:admin-token}}'),
    );
    rejects('secrets', /must declare "db"/, (m) => (m.containers[0].env.DEMO_DB = '{{secret:db}}'));
    rejects(
      'containers.0.env.DEMO_USER',
      /unknown placeholder \{\{user\}\}/,
      (m) => (m.containers[0].env.DEMO_USER = '{{user}}'),
    );
    rejects(
      'containers.0.env.DEMO_USER',
      /may not use \{\{username\}\}/,
      (m) => (m.containers[0].env.DEMO_USER = '{{username}}'),
    );
    rejects('containers.0.env.bad-name', /not a known field/, (m) => (m.containers[0].env['bad-name'] = 'x'));
  });

  it('checks volumes, ports and container names', () => {
    rejects('containers.0.volumes.0.path', /absolute path/, (m) => (m.containers[0].volumes[0].path = 'data'));
    rejects('containers.0.volumes.0.path', /absolute path/, (m) => (m.containers[0].volumes[0].path = '/data/../etc'));
    rejects('containers.0.volumes.1.path', /second volume/, (m) => (m.containers[0].volumes[1].path = '/data'));
    rejects('containers.0.ports.0.container', /<= 65535/, (m) => (m.containers[0].ports[0].container = 70000));
    rejects('containers.0.ports.0.protocol', /tcp, udp/, (m) => (m.containers[0].ports[0].protocol = 'sctp'));
    rejects(
      'containers.1.ports.0.host',
      /already published/,
      (m) => (m.containers[1].ports = [{ container: 9001, protocol: 'tcp', host: 9000 }]),
    );
    for (const host of [22, 53, 80, 443]) {
      rejects(
        'containers.0.ports.0.host',
        /is reserved for the cell's host/,
        (m) => (m.containers[0].ports = [{ container: 8080, protocol: 'udp', host }]),
      );
    }
    rejects('containers.1.name', /repeats container name/, (m) => (m.containers[1].name = 'app'));
  });

  it('checks health checks', () => {
    rejects(
      'containers.0.healthcheck',
      /exactly one of exec and http/,
      (m) => (m.containers[0].healthcheck.exec = ['true']),
    );
    rejects('containers.1.healthcheck', /exactly one of exec and http/, (m) => delete m.containers[1].healthcheck.exec);
    rejects(
      'containers.0.healthcheck.http.port',
      /not a tcp port declared/,
      (m) => (m.containers[0].healthcheck.http.port = 8081),
    );
    rejects(
      'containers.1.healthcheck.exec',
      /must be array/,
      (m) => (m.containers[1].healthcheck.exec = 'demo-worker ping'),
    );
    rejects(
      'containers.0.healthcheck.timeoutSeconds',
      /must not exceed intervalSeconds/,
      (m) => (m.containers[0].healthcheck.timeoutSeconds = 20),
    );
    rejects('containers.0.healthcheck.retries', />= 1/, (m) => (m.containers[0].healthcheck.retries = 0));
  });

  it('checks the account provisioning contract', () => {
    rejects(
      'accounts.create.exec.argv',
      /must be array/,
      (m) => (m.accounts.create.exec.argv = 'demo-account add {{username}} {{password}}'),
    );
    rejects('accounts.create.exec.container', /does not define/, (m) => (m.accounts.create.exec.container = 'db'));
    rejects(
      'accounts.create',
      /exactly one of exec and http/,
      (m) => (m.accounts.create.http = clone(m.accounts.delete.http)),
    );
    rejects('accounts.create', /must pass \{\{password\}\}/, (m) => (m.accounts.create.exec.stdin = 'fixed'));
    rejects(
      'accounts.delete.http.body.fields.password',
      /may not use \{\{password\}\}/,
      (m) => (m.accounts.delete.http.body.fields.password = '{{password}}'),
    );
    rejects(
      'accounts.list.exec.argv.1',
      /may not use \{\{username\}\}/,
      (m) => (m.accounts.list = { exec: { container: 'app', argv: ['ls', '{{username}}'] }, output: 'lines' }),
    );
    rejects('accounts.list.output', /lines, json/, (m) => (m.accounts.list.output = 'csv'));
    rejects('accounts.delete.http.port', /not a tcp port declared/, (m) => (m.accounts.delete.http.port = 9999));
    rejects(
      'accounts.list.http.body',
      /not sent with GET/,
      (m) => (m.accounts.list.http.body = { encoding: 'json', fields: {} }),
    );
    rejects('accounts.delete.http.method', /GET, POST/, (m) => (m.accounts.delete.http.method = 'TRACE'));
  });

  it('checks the connection info templates', () => {
    rejects('credentials.0.host', /unknown placeholder \{\{host\}\}/, (m) => (m.credentials[0].host = '{{host}}'));
    rejects(
      'credentials.0.password',
      /may not use \{\{secret/,
      (m) => (m.credentials[0].password = '{{secret:admin-token}}'),
    );
    rejects('credentials.0.protocol', /must be one of/, (m) => (m.credentials[0].protocol = 'ftp'));
    rejects('credentials.0.path', /unknown placeholder \{\{/, (m) => (m.credentials[0].path = '/{{username}/'));
    rejects('credentials', /needs an accounts section/, (m) => {
      delete m.accounts;
      m.capabilities = ['http'];
      m.routes = [];
    });
  });

  it('checks the routes the cell mounts', () => {
    rejects('routes.4.proxy', /required when handler is proxy/, (m) => delete m.routes[4].proxy);
    rejects('routes.0.proxy', /only for handler proxy/, (m) => (m.routes[0].proxy = clone(m.routes[4].proxy)));
    rejects(
      'routes.4.proxy.path',
      /uses :id, which the route path does not define/,
      (m) => (m.routes[4].proxy.path = '/admin/items/:id'),
    );
    rejects('routes.4.proxy.container', /does not define/, (m) => (m.routes[4].proxy.container = 'nope'));
    rejects('routes.2.method', /must be DELETE/, (m) => (m.routes[2].method = 'POST'));
    rejects('routes.2.path', /must contain :username/, (m) => (m.routes[2].path = '/accounts/:name'));
    rejects('routes.0.path', /takes no parameters/, (m) => (m.routes[0].path = '/accounts/:group'));
    rejects('routes.1.path', /repeats route GET/, (m) => {
      m.routes[1].method = 'GET';
      m.routes[1].handler = 'accounts.list';
    });
    rejects('routes.4.path', /reserved/, (m) => {
      m.routes[4].path = '/status';
      m.routes[4].proxy.path = '/status';
    });
    rejects('routes.0.path', /segments/, (m) => (m.routes[0].path = '/Accounts/../x'));
    rejects('routes.0.handler', /must be one of: proxy/, (m) => (m.routes[0].handler = 'shell'));
  });

  it('checks exec routes, accounts.rotate and container TLS', () => {
    const withExtras = (m: any) => {
      m.routes.push(
        {
          method: 'GET',
          path: '/usage/:username',
          handler: 'exec',
          description: 'Usage',
          exec: { container: 'app', argv: ['usage', ':username', '{{domain}}'], output: 'json' },
        },
        {
          method: 'POST',
          path: '/aliases',
          handler: 'exec',
          description: 'Add',
          exec: { container: 'app', argv: ['alias-add', ':alias', ':mailbox'], output: 'lines' },
        },
        { method: 'POST', path: '/accounts/:username/rotate', handler: 'accounts.rotate', description: 'Rotate' },
      );
      m.containers[0].tls = { path: '/etc/demo/tls', gid: 101 };
      m.containers[0].healthcheck.http.tls = true;
      m.web.tls = true;
    };
    const ok = clone(validManifest()) as any;
    withExtras(ok);
    assert.deepEqual(validateManifest(clone(ok)), ok);
    const broken = (path: string, reason: RegExp, mutate: (m: any) => void) =>
      rejects(path, reason, (m) => {
        withExtras(m);
        mutate(m);
      });
    broken('routes.5.exec', /required when handler is exec/, (m) => delete m.routes[5].exec);
    broken('routes.0.exec', /only for handler exec/, (m) => (m.routes[0].exec = clone(m.routes[5].exec)));
    broken(
      'routes.5.exec.argv.1',
      /uses :name, which the route path does not define/,
      (m) => (m.routes[5].exec.argv[1] = ':name'),
    );
    broken('routes.5.exec.argv.2', /may not use \{\{username\}\}/, (m) => (m.routes[5].exec.argv[2] = '{{username}}'));
    broken('routes.5.exec.container', /does not define/, (m) => (m.routes[5].exec.container = 'nope'));
    broken('routes.7.method', /must be POST/, (m) => (m.routes[7].method = 'PUT'));
    broken('routes.7.path', /must contain :username/, (m) => (m.routes[7].path = '/accounts/rotate'));
    broken('containers.0.tls.path', /absolute path/, (m) => (m.containers[0].tls.path = 'tls'));
    broken('containers.0.healthcheck.http.tls', /needs the container's tls section/, (m) => delete m.containers[0].tls);
    broken('web.tls', /needs the container's tls section/, (m) => delete m.containers[0].tls);
    broken('web.tls', /must be boolean/, (m) => (m.web.tls = 'yes'));
  });

  it('reads YAML strictly and names the document when it is not a manifest', () => {
    const parseFields = (text: string) => {
      try {
        parseManifest(text);
      } catch (err) {
        assert.ok(err instanceof ManifestError);
        return err.fields;
      }
      assert.fail('accepted');
    };
    assert.match(parseFields('id: a\nid: b\n')['(document)']!, /not valid YAML.*unique/i);
    assert.match(parseFields('id: [unclosed\n')['(document)']!, /not valid YAML/);
    assert.match(parseFields('a: &x 1\nb: *x\n')['(document)']!, /alias/i);
    assert.match(parseFields('n: .inf\n')['n']!, /Infinity/);
    assert.match(parseFields('- 1\n- 2\n')['(document)']!, /must be object/);
  });
});
