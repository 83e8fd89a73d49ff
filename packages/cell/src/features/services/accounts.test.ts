import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EngineUnreachableError } from '@pic/runtime';
import type { ServiceManifest } from '@pic/manifest';
import { nowIso } from '../../lib/tokens.js';
import { deletePeer } from '../peers/service.js';
import { findInstallation } from '../store/queries.js';
import {
  FakeRuntime,
  IMAGE_ID,
  demoManifest,
  engineDeps,
  openTestCell,
  seedInstallation,
  type TestCell,
} from '../store/fixtures.test-support.js';
import { accountSecretName, ServiceAccounts } from './accounts.js';

/** The demo manifest with an exec accounts contract (pic-account style). */
function withAccounts(): ServiceManifest {
  const m = demoManifest('demo');
  m.capabilities = ['accounts', 'http'];
  m.accounts = {
    create: { exec: { container: 'app', argv: ['pic-account', 'add', '{{username}}', '-'], stdin: '{{password}}\n' } },
    delete: { exec: { container: 'app', argv: ['pic-account', 'del', '{{username}}'] } },
    list: { exec: { container: 'app', argv: ['pic-account', 'list'] }, output: 'lines' },
  };
  m.credentials = [
    {
      label: 'Demo',
      protocol: 'http',
      security: 'tls',
      host: '{{subdomain}}.{{domain}}',
      port: 443,
      username: '{{username}}',
      password: '{{password}}',
    },
  ];
  return m;
}

// Account bookkeeping (vault, tombstones, the peer-deletion hook) with the runtime double; the real
// provisioning inside a container is covered by test/e2e/store.test.ts.
describe('ServiceAccounts (runtime double)', () => {
  let cell: TestCell;
  let runtime: FakeRuntime;
  let accounts: ServiceAccounts;
  const app = 'pic-c0ffee000000-demo-app';

  const addPeer = async (name: string) => {
    const now = nowIso();
    const { id } = await cell.database.db
      .insertInto('peers')
      .values({
        name,
        description: '',
        user_id: null,
        public_key: `key-${name}`,
        address: `10.8.0.${name.length + 10}`,
        dns: '[]',
        allowed_ips: '[]',
        peer_group: null,
        tags: '[]',
        enabled: 1,
        expires_at: null,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  };
  const inst = async () => (await findInstallation(cell.database.db, 'demo'))!;
  const tx = <T>(fn: (trx: any) => Promise<T>) => cell.database.db.transaction().execute(fn);

  beforeEach(async () => {
    cell = await openTestCell();
    runtime = new FakeRuntime();
    await runtime.createContainer({ name: app, service: 'demo', image: IMAGE_ID });
    await runtime.startContainer(app);
    await seedInstallation(cell.database.db, withAccounts(), 'installed');
    accounts = new ServiceAccounts(engineDeps(cell, runtime));
  });
  afterEach(() => cell.close());

  it('creates an account for a peer: generated password in the vault, given to the service on stdin only', async () => {
    await addPeer('alice');
    const i = await inst();
    const view = await tx((trx) => accounts.create(trx, i, { peer: 'alice' }));
    assert.equal(view.username, 'alice');
    const row = (await accounts.find(cell.database.db, 'demo', 'alice'))!;
    const password = await cell.vault.get(accountSecretName('demo', row.id));
    assert.ok(password && password.length >= 20);
    const exec = runtime.execs.at(-1)!;
    assert.deepEqual(exec.argv, ['pic-account', 'add', 'alice', '-']);
    assert.equal(exec.stdin, `${password}\n`);
    assert.ok(!exec.argv.includes(password!), 'never in argv');
    const creds = await accounts.credentials(cell.database.db, await inst(), 'alice');
    assert.deepEqual(creds, [
      {
        label: 'Demo',
        protocol: 'http',
        security: 'tls',
        host: 'demo.cell.lan',
        port: 443,
        username: 'alice',
        password,
      },
    ]);
  });

  it('a refusal by the service rolls the account back: no row, no secret', async () => {
    runtime.execResult = () => ({ exitCode: 2, stdout: '', stderr: 'invalid username' });
    const i = await inst();
    await assert.rejects(
      tx((trx) => accounts.create(trx, i, { username: 'bob' })),
      (err: any) => err.status === 502 && /exited with 2: invalid username/.test(err.message),
    );
    assert.equal(await accounts.find(cell.database.db, 'demo', 'bob'), undefined);
    assert.deepEqual(
      (await cell.vault.list()).filter((s) => s.name.includes('/account/')),
      [],
    );
  });

  it('deleting a peer deprovisions its accounts in the same transaction, forgetting the password', async () => {
    const peerId = await addPeer('alice');
    const i = await inst();
    await tx((trx) => accounts.create(trx, i, { peer: 'alice' }));
    const row = (await accounts.find(cell.database.db, 'demo', 'alice'))!;
    await tx((trx) => deletePeer(trx, cell.vault, 'alice', [accounts.peerDeletionHook]));
    assert.deepEqual(runtime.execs.at(-1)!.argv, ['pic-account', 'del', 'alice']);
    assert.equal(await accounts.find(cell.database.db, 'demo', 'alice'), undefined);
    assert.equal(await cell.vault.get(accountSecretName('demo', row.id)), undefined);
    assert.equal(
      await cell.database.db.selectFrom('peers').select('id').where('id', '=', peerId).executeTakeFirst(),
      undefined,
    );
  });

  it('a service that cannot be reached leaves a tombstone, retried until it succeeds; the peer is deleted anyway', async () => {
    await addPeer('alice');
    const i = await inst();
    await tx((trx) => accounts.create(trx, i, { peer: 'alice' }));
    const row = (await accounts.find(cell.database.db, 'demo', 'alice'))!;
    runtime.failures.exec = () => new EngineUnreachableError(runtime.endpoint, 'down');
    await tx((trx) => deletePeer(trx, cell.vault, 'alice', [accounts.peerDeletionHook]));
    const tomb = (await accounts.find(cell.database.db, 'demo', 'alice'))!;
    assert.equal(tomb.state, 'deleting');
    assert.equal(tomb.peer_id, null);
    assert.equal(
      await cell.vault.get(accountSecretName('demo', row.id)),
      undefined,
      'the password is forgotten at once',
    );
    const audit = cell.database.sqlite
      .prepare("SELECT result, details FROM audit_log WHERE action = 'services.account.deprovision'")
      .all() as Array<{ result: string; details: string }>;
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.result, 'error');
    assert.equal(JSON.parse(audit[0]!.details).retry, 'pending');
    // not listed as an account, no credentials
    await assert.rejects(accounts.credentials(cell.database.db, i, 'alice'), (err: any) => err.status === 404);

    assert.equal(await accounts.retryTombstones(), 0, 'still down');
    delete runtime.failures.exec;
    assert.equal(await accounts.retryTombstones(), 1);
    assert.deepEqual(runtime.execs.at(-1)!.argv, ['pic-account', 'del', 'alice']);
    assert.equal(await accounts.find(cell.database.db, 'demo', 'alice'), undefined);
  });

  it('409 for an existing account, 404 for an unknown peer, and a tombstone is reused by a new create', async () => {
    await addPeer('alice');
    const i = await inst();
    await tx((trx) => accounts.create(trx, i, { peer: 'alice' }));
    await assert.rejects(
      tx((trx) => accounts.create(trx, i, { peer: 'alice' })),
      (err: any) => err.status === 409,
    );
    await assert.rejects(
      tx((trx) => accounts.create(trx, i, { peer: 'nobody' })),
      (err: any) => err.status === 404,
    );
    await cell.database.db.updateTable('service_accounts').set({ state: 'deleting', peer_id: null }).execute();
    await tx((trx) => accounts.create(trx, i, { username: 'alice' }));
    assert.equal((await accounts.find(cell.database.db, 'demo', 'alice'))!.state, 'active');
  });
});
