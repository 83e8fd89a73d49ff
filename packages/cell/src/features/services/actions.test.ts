import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccountAction, ServiceManifest } from '@pic/manifest';
import { renderTemplate } from '@pic/manifest';
import { FakeRuntime, IMAGE_ID, demoManifest } from '../store/fixtures.test-support.js';
import {
  execRouteArgv,
  parseAccountList,
  renderUrlTemplate,
  runAccountAction,
  runExecRoute,
  scrub,
  ServiceActionError,
} from './actions.js';

const PASSWORD = 'pw with spaces & "quotes"; $(rm -rf /)';
const values = {
  username: 'alice',
  password: PASSWORD,
  domain: 'home.example.org',
  subdomain: 'demo',
  secrets: { token: 'secret-token-value' },
};

describe('account actions', () => {
  let server: Server;
  let port: number;
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  let status = 200;
  const runtime = new FakeRuntime();
  const manifest: ServiceManifest = demoManifest();
  const container = `pic-${runtime.cellId}-demo-app`;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 200 ? 'alice\nbob\n\n' : `refused ${PASSWORD}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    await runtime.createContainer({ name: container, service: 'demo', image: IMAGE_ID });
    await runtime.startContainer(container);
    Object.assign(runtime.containers.get(container)!, {
      ports: [{ containerPort: 8080, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: port }],
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('exec: fills each argv element separately (no shell), passes the password on stdin', async () => {
    const action: AccountAction = {
      exec: { container: 'app', argv: ['pic-account', 'add', '{{username}}', '-'], stdin: '{{password}}\n' },
    };
    await runAccountAction(runtime, runtime.cellId, manifest, action, values, 'creating');
    const call = runtime.execs.at(-1)!;
    assert.equal(call.container, container);
    assert.deepEqual(call.argv, ['pic-account', 'add', 'alice', '-']);
    assert.equal(call.stdin, `${PASSWORD}\n`);
  });

  it('exec: a failure names the command and exit code, never later arguments or secrets', async () => {
    runtime.execResult = () => ({ exitCode: 2, stdout: '', stderr: `bad password ${PASSWORD}\n` });
    const action: AccountAction = { exec: { container: 'app', argv: ['tool', '--password', '{{password}}'] } };
    await assert.rejects(
      runAccountAction(runtime, runtime.cellId, manifest, action, values, 'creating'),
      (err: Error) => {
        assert.ok(err instanceof ServiceActionError);
        assert.match(err.message, /tool in container "app" exited with 2/);
        assert.ok(!err.message.includes(PASSWORD), err.message);
        assert.ok(!err.message.includes('--password'));
        return true;
      },
    );
    runtime.execResult = () => ({ exitCode: 0, stdout: '', stderr: '' });
  });

  it('http: reaches the container on its loopback port; path placeholders URL-encoded, form fields encoded by the cell', async () => {
    const action: AccountAction = {
      http: {
        container: 'app',
        port: 8080,
        method: 'POST',
        path: '/admin/{{username}}?d={{domain}}',
        headers: { 'X-Admin-Token': '{{secret:token}}' },
        body: { encoding: 'form', fields: { username: '{{username}}', password: '{{password}}' } },
      },
    };
    await runAccountAction(runtime, runtime.cellId, manifest, action, { ...values, username: 'a/b&c' }, 'creating');
    const req = seen.at(-1)!;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/admin/a%2Fb%26c?d=home.example.org');
    assert.equal(req.headers['x-admin-token'], 'secret-token-value');
    assert.deepEqual(
      Object.fromEntries(new URLSearchParams(req.body)),
      { username: 'a/b&c', password: PASSWORD },
      'a value cannot break out of its field',
    );
  });

  it('http: a non-2xx answer fails with the status, the secret scrubbed from the reply', async () => {
    status = 401;
    const action: AccountAction = { http: { container: 'app', port: 8080, method: 'GET', path: '/admin' } };
    await assert.rejects(
      runAccountAction(runtime, runtime.cellId, manifest, action, values, 'listing'),
      (err: Error) => /answered 401/.test(err.message) && !err.message.includes(PASSWORD),
    );
    status = 200;
    const out = await runAccountAction(runtime, runtime.cellId, manifest, action, values, 'listing');
    assert.deepEqual(parseAccountList(out, 'lines'), ['alice', 'bob']);
  });

  it('a stopped container or an unpublished port is a clear failure', async () => {
    const action: AccountAction = { http: { container: 'app', port: 9999, method: 'GET', path: '/' } };
    await assert.rejects(
      runAccountAction(runtime, runtime.cellId, manifest, action, values, 'listing'),
      /port 9999\/tcp .* is not published/,
    );
  });

  it('parses list output and helpers behave', () => {
    assert.deepEqual(parseAccountList('["a","b"]', 'json'), ['a', 'b']);
    assert.throws(() => parseAccountList('[1]', 'json'), /array of strings/);
    assert.throws(() => parseAccountList('nope', 'json'), /not JSON/);
    assert.equal(scrub(`x ${PASSWORD} y secret-token-value`, values), 'x *** y ***');
    assert.equal(renderUrlTemplate('/u/{{username}}', { username: 'a b' }, renderTemplate), '/u/a%20b');
  });

  it('exec routes: :name arguments from params or body, checked before anything runs; output as JSON or lines', async () => {
    const argv = ['pic-account', 'alias-add', ':alias', ':mailbox', '{{domain}}'];
    const fields: Record<string, unknown> = { alias: 'info', mailbox: 'alice' };
    const filled = execRouteArgv(argv, (n) => fields[n]);
    assert.deepEqual(filled, { argv: ['pic-account', 'alias-add', 'info', 'alice', '{{domain}}'], problems: {} });
    for (const bad of ['../x', 'a:b', 'a\nb', 'x@evil', '', '-rf', 'A', 'a'.repeat(65), 42]) {
      const { problems } = execRouteArgv(argv, (n) => (n === 'alias' ? bad : 'alice'));
      assert.ok(problems['alias'], `refused ${JSON.stringify(bad)}`);
    }
    assert.deepEqual(execRouteArgv(argv, () => undefined).problems, {
      alias: 'is required (a string)',
      mailbox: 'is required (a string)',
    });

    const before = runtime.execs.length;
    runtime.execResult = () => ({ exitCode: 0, stdout: '{"alias":"info"}\n', stderr: '' });
    const exec = { container: 'app', argv, output: 'json' as const };
    assert.deepEqual(await runExecRoute(runtime, runtime.cellId, manifest, exec, filled.argv, values), {
      alias: 'info',
    });
    assert.deepEqual(
      runtime.execs.at(-1)!.argv,
      ['pic-account', 'alias-add', 'info', 'alice', 'home.example.org'],
      'templates filled, values kept as given',
    );
    assert.equal(runtime.execs.length, before + 1);
    runtime.execResult = () => ({ exitCode: 0, stdout: 'a\n\nb\n', stderr: '' });
    assert.deepEqual(
      await runExecRoute(runtime, runtime.cellId, manifest, { ...exec, output: 'lines' }, filled.argv, values),
      ['a', 'b'],
    );
    runtime.execResult = () => ({ exitCode: 0, stdout: 'not json', stderr: '' });
    await assert.rejects(
      runExecRoute(runtime, runtime.cellId, manifest, exec, filled.argv, values),
      /did not answer JSON/,
    );
    runtime.execResult = () => ({ exitCode: 3, stdout: '', stderr: 'no mailbox alice\n' });
    await assert.rejects(runExecRoute(runtime, runtime.cellId, manifest, exec, filled.argv, values), (err: Error) => {
      assert.ok(err instanceof ServiceActionError);
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /exited with 3: no mailbox alice/);
      return true;
    });
    runtime.execResult = () => ({ exitCode: 0, stdout: '', stderr: '' });
  });
});
