import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type CellDatabase } from '../../db/database.js';
import { readSetting } from '../../db/settings.js';
import { HttpError } from '../../http/errors.js';
import { hashPassword, verifyPassword } from '../../lib/password.js';
import { findCredentials } from '../users/service.js';
import { readCellSettings } from '../config/service.js';
import { STEPS } from './schema.js';
import {
  SetupState,
  completeSetup,
  describeStep,
  presentStatus,
  stepValidator,
  submitStep,
  type SetupProgress,
} from './service.js';

const ADMIN = { username: 'admin', password: 'correct horse battery staple' };
const IDENTITY = { cell_name: 'home', domain: 'home.example.org' };
const NETWORK = { wireguard_port: 51821, subnet: '10.9.0.0/24', endpoint: 'vpn.example.org:51821' };

/** Asserts `promise` rejects with a 409 HttpError whose message matches. */
async function conflict(promise: Promise<unknown>, message: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof HttpError, `expected an HttpError, got ${String(err)}`);
    assert.equal(err.status, 409);
    assert.match(err.message, message);
    return true;
  });
}

describe('setup wizard service on a real SQLite file', () => {
  let dir: string;
  let database: CellDatabase;
  const fastHash = async (p: string) => `test-hash:${p.length}`;
  const submit = (step: SetupProgress['step'], body: unknown, hash = fastHash) =>
    database.db.transaction().execute((trx) => submitStep(trx, step, body, hash));
  const complete = () => database.db.transaction().execute((trx) => completeSetup(trx));
  const stored = () => readSetting<SetupProgress>(database.db, 'setup');

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pic-setup-'));
  });
  after(async () => {
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await database?.close();
    database = openDatabase(join(dir, `cell-${Date.now()}-${Math.random()}.db`));
    await database.migrate();
  });

  it('a fresh cell is at the admin step, not complete', async () => {
    const state = new SetupState();
    await state.load(database.db);
    assert.deepEqual(state.current, { step: 'admin', complete: false });
    assert.equal(state.isComplete(), false);
    assert.deepEqual(presentStatus(state.current), {
      complete: false,
      step: 'admin',
      steps: STEPS,
      completed_at: null,
    });
    const described = await describeStep(database.db, state.current);
    assert.equal(described.step, 'admin');
    assert.deepEqual(described.data, { username: 'admin' });
    assert.ok(described.schema);
  });

  it('walks admin → identity → network → review → complete, storing each step', async () => {
    const first = await submit('admin', ADMIN, hashPassword);
    assert.deepEqual(first.progress, { step: 'identity', complete: false });
    assert.equal(first.createdAdmin?.username, 'admin');
    assert.equal(first.createdAdmin?.role, 'admin');
    assert.equal(
      'password_hash' in (first.createdAdmin ?? {}),
      false,
      'the created user is presented without its hash',
    );
    const creds = await findCredentials(database.db, 'admin');
    assert.equal(
      await verifyPassword(ADMIN.password, creds!.password_hash),
      true,
      'the admin can sign in with that password',
    );

    assert.deepEqual((await submit('identity', IDENTITY)).progress, { step: 'network', complete: false });
    assert.deepEqual((await submit('network', NETWORK)).progress, { step: 'review', complete: false });
    const state = new SetupState();
    await state.load(database.db);
    const review = await describeStep(database.db, state.current);
    assert.equal(review.step, 'review');
    assert.deepEqual(review.data, { identity: IDENTITY, network: NETWORK, admins: 1 });

    const last = await submit('review', {});
    assert.deepEqual(last.progress, { step: 'complete', complete: false });
    assert.equal(last.createdAdmin, undefined);
    assert.deepEqual(await readCellSettings(database.db), { identity: IDENTITY, network: NETWORK });

    const done = await complete();
    assert.equal(done.complete, true);
    assert.equal(done.step, null);
    assert.ok(!Number.isNaN(Date.parse(done.completed_at!)));
    assert.deepEqual(await stored(), done, 'the database holds the final state');
    await state.load(database.db);
    assert.equal(state.isComplete(), true, 'a restart (load) sees it complete');
  });

  it('an empty endpoint is stored as null', async () => {
    await submit('admin', ADMIN);
    await submit('identity', IDENTITY);
    await submit('network', { ...NETWORK, endpoint: '' });
    assert.equal((await readCellSettings(database.db)).network.endpoint, null);
  });

  it('refuses steps out of order with 409, naming the current step, and writes nothing', async () => {
    await conflict(submit('identity', IDENTITY), /current step is now "admin"/);
    await conflict(submit('review', {}), /current step is now "admin"/);
    assert.equal(await stored(), undefined, 'no progress was written');
    await submit('admin', ADMIN);
    await conflict(submit('admin', { username: 'second', password: ADMIN.password }), /current step is now "identity"/);
    await conflict(submit('network', NETWORK), /current step is now "identity"/);
    const users = await database.db.selectFrom('users').select('username').execute();
    assert.deepEqual(users, [{ username: 'admin' }], 'no second admin');
  });

  it('two concurrent submissions of the same step: one wins, the stale one gets 409', async () => {
    const results = await Promise.allSettled([
      submit('admin', { username: 'first', password: ADMIN.password }),
      submit('admin', { username: 'second', password: ADMIN.password }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.equal(failed.length, 1);
    assert.ok(failed[0]!.reason instanceof HttpError);
    assert.equal(failed[0]!.reason.status, 409);
    assert.match(failed[0]!.reason.message, /current step is now "identity"/);
    const admins = await database.db.selectFrom('users').select('username').execute();
    assert.equal(admins.length, 1, 'exactly one admin was created');
  });

  it('a step that fails inside its transaction leaves no trace', async () => {
    await assert.rejects(
      submit('admin', ADMIN, async () => {
        throw new Error('hashing failed');
      }),
      /hashing failed/,
    );
    assert.equal(await stored(), undefined);
    assert.equal((await database.db.selectFrom('users').selectAll().execute()).length, 0);
    // …and the step can be submitted again.
    assert.equal((await submit('admin', ADMIN)).progress.step, 'identity');
  });

  it('completeSetup only after review; afterwards every step and a second completion get 409', async () => {
    await conflict(complete(), /not finished: the current step is "admin"/);
    await submit('admin', ADMIN);
    await conflict(complete(), /current step is "identity"/);
    await submit('identity', IDENTITY);
    await submit('network', NETWORK);
    await conflict(complete(), /current step is "review"/);
    await submit('review', {});
    await conflict(submit('review', {}), /every step is done/);
    await complete();
    await conflict(complete(), /already complete/);
    for (const step of ['admin', 'identity', 'network', 'review'] as const) {
      await conflict(submit(step, {}), /already complete/);
    }
  });

  it('SetupState mirrors what was committed', async () => {
    const state = new SetupState();
    await state.load(database.db);
    const { progress } = await submit('admin', ADMIN);
    assert.equal(state.current.step, 'admin', 'unchanged until told');
    state.committed(progress);
    assert.equal(state.current.step, 'identity');
  });

  it('stepValidator gives each step its schema, and none once the wizard is through', () => {
    for (const step of STEPS) assert.ok(stepValidator(step)?.schema, step);
    assert.equal(typeof stepValidator('identity')?.check, 'function');
    assert.equal(typeof stepValidator('network')?.check, 'function');
    assert.equal(stepValidator('complete'), undefined);
    assert.equal(stepValidator(null), undefined);
  });
});
