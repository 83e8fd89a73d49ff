import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SOCKET, describeEndpoint, parseEndpoint, resolveEndpoint } from './endpoint.js';
import { InvalidSpecError } from './errors.js';

describe('engine endpoint from config', () => {
  it('prefers the explicit socket, then DOCKER_HOST, then Docker’s default', () => {
    assert.deepEqual(resolveEndpoint({ socket: '/run/a.sock', dockerHost: 'unix:///run/b.sock' }), {
      kind: 'unix',
      socketPath: '/run/a.sock',
    });
    assert.deepEqual(resolveEndpoint({ dockerHost: 'unix:///run/pic-docker.sock' }), {
      kind: 'unix',
      socketPath: '/run/pic-docker.sock',
    });
    assert.deepEqual(resolveEndpoint({ socket: '  ', dockerHost: '' }), { kind: 'unix', socketPath: DEFAULT_SOCKET });
    assert.deepEqual(resolveEndpoint(), { kind: 'unix', socketPath: DEFAULT_SOCKET });
  });

  it('parses unix:// and tcp:// and describes them the DOCKER_HOST way', () => {
    assert.deepEqual(parseEndpoint('unix:///run/podman/podman.sock'), {
      kind: 'unix',
      socketPath: '/run/podman/podman.sock',
    });
    assert.deepEqual(parseEndpoint('tcp://127.0.0.1:2375'), { kind: 'tcp', host: '127.0.0.1', port: 2375 });
    assert.deepEqual(parseEndpoint('tcp://[::1]'), { kind: 'tcp', host: '::1', port: 2375 });
    assert.equal(describeEndpoint(parseEndpoint('/x.sock')), 'unix:///x.sock');
    assert.equal(describeEndpoint(parseEndpoint('tcp://localhost:1234')), 'tcp://localhost:1234');
  });

  it('refuses addresses it cannot use', () => {
    assert.throws(() => parseEndpoint('ssh://user@host'), InvalidSpecError);
    assert.throws(() => parseEndpoint('unix://relative.sock'), InvalidSpecError);
    assert.throws(() => parseEndpoint('docker.sock'), InvalidSpecError);
  });
});
