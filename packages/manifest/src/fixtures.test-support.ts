// Shared by this package's tests (not exported from the package): a valid manifest to mutate,
// and where the repository is.
import { join } from 'node:path';
import type { ServiceManifest } from './schema.js';

export const REPO_ROOT = process.env['PIC_REPO_ROOT'] ?? join(import.meta.dirname, '..', '..', '..');

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;

/** A manifest that uses every feature once; each test copies it and breaks one field. */
export function validManifest(): ServiceManifest {
  return {
    id: 'demo',
    name: 'Demo',
    version: '1.2.3',
    description: 'A service that exercises every manifest field.',
    subdomain: 'demo',
    capabilities: ['accounts', 'http'],
    web: { container: 'app', port: 8080 },
    secrets: [{ name: 'admin-token', description: 'Admin API token', length: 32 }],
    containers: [
      {
        name: 'app',
        image: `registry.example.com:5000/pic/demo:1.2@${DIGEST_A}`,
        command: ['demo-server', '--port', '8080'],
        env: {
          DEMO_DOMAIN: '{{domain}}',
          DEMO_HOST: '{{subdomain}}.{{domain}}',
          DEMO_ADMIN_TOKEN: '{{secret:admin-token}}',
          DEMO_PASSWORD_FILE: '/run/pw',
        },
        volumes: [
          { name: 'data', path: '/data' },
          { name: 'config', path: '/etc/demo', readOnly: true },
        ],
        ports: [
          { container: 8080, protocol: 'tcp', description: 'HTTP' },
          { container: 9000, protocol: 'tcp', host: 9000 },
        ],
        healthcheck: {
          http: { port: 8080, path: '/health' },
          intervalSeconds: 10,
          timeoutSeconds: 3,
          retries: 3,
          startPeriodSeconds: 5,
        },
      },
      {
        name: 'worker',
        image: `pic/demo-worker@${DIGEST_B}`,
        healthcheck: { exec: ['demo-worker', 'ping'], intervalSeconds: 30, timeoutSeconds: 5, retries: 2 },
      },
    ],
    accounts: {
      create: {
        exec: { container: 'app', argv: ['demo-account', 'add', '{{username}}', '-'], stdin: '{{password}}\n' },
        timeoutSeconds: 20,
      },
      delete: {
        http: {
          container: 'app',
          port: 8080,
          method: 'POST',
          path: '/admin/accounts',
          headers: { 'X-Admin-Token': '{{secret:admin-token}}' },
          body: { encoding: 'form', fields: { action: 'del', username: '{{username}}' } },
        },
      },
      list: { http: { container: 'app', port: 8080, method: 'GET', path: '/admin/accounts' }, output: 'json' },
    },
    credentials: [
      {
        label: 'Demo',
        protocol: 'http',
        security: 'tls',
        host: '{{subdomain}}.{{domain}}',
        port: 443,
        username: '{{username}}@{{domain}}',
        password: '{{password}}',
        path: '/{{username}}/',
      },
    ],
    routes: [
      { method: 'GET', path: '/accounts', handler: 'accounts.list', description: 'List accounts' },
      { method: 'POST', path: '/accounts', handler: 'accounts.create', description: 'Create an account' },
      { method: 'DELETE', path: '/accounts/:username', handler: 'accounts.delete', description: 'Delete an account' },
      {
        method: 'GET',
        path: '/accounts/:username/credentials',
        handler: 'accounts.credentials',
        description: 'Connection info',
      },
      {
        method: 'GET',
        path: '/items/:item',
        handler: 'proxy',
        description: 'Read an item',
        proxy: {
          container: 'app',
          port: 8080,
          path: '/admin/items/:item',
          headers: { 'X-Admin-Token': '{{secret:admin-token}}' },
        },
      },
    ],
  };
}

/** A deep copy to mutate. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}
