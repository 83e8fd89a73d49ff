import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nextPollForIo, openTempDatabase, type TempDatabase } from '../db/temp-database.test-support.js';
import type { CellDatabase } from '../db/database.js';
import SQLite from 'better-sqlite3';
import { storeNewPassword } from '../features/auth/service.js';
import { createUser } from '../features/users/service.js';
import { randomToken, sha256Hex } from '../lib/tokens.js';
import { SqliteSessionStore } from './session.js';

const MIN = 60_000;
const IDLE = 30 * MIN;
const ABSOLUTE = 8 * 60 * MIN;

describe('SqliteSessionStore on a real SQLite file', () => {
  let dir: string;
  let database: CellDatabase;
  let temp: TempDatabase;
  let now: number;
  let store: SqliteSessionStore;
  let alice: number;
  let bob: number;
  const rows = () => database.db.selectFrom('sessions').selectAll().orderBy('created_at').execute();

  before(async () => {
    temp = await openTempDatabase('pic-session-');
    ({ dir, database } = temp);
    alice = (await createUser(database.db, { username: 'alice', role: 'admin', passwordHash: 'x' })).id;
    bob = (await createUser(database.db, { username: 'bob', role: 'peer', passwordHash: 'x' })).id;
  });
  after(async () => {
    await temp.remove();
  });
  beforeEach(async () => {
    await database.db.deleteFrom('sessions').execute();
    now = Date.parse('2026-01-01T00:00:00.000Z');
    store = new SqliteSessionStore(database, ABSOLUTE, () => now);
  });

  it('stores the data under the SHA-256 of the id, and never the id itself', async () => {
    const key = randomToken();
    await store.set(key, { uid: alice, role: 'admin', csrf: 'csrf-token-value' }, IDLE);
    const [row, ...more] = await rows();
    assert.equal(more.length, 0);
    assert.equal(row!.id_hash, sha256Hex(key));
    assert.equal(row!.user_id, alice);
    assert.deepEqual(JSON.parse(row!.data), { uid: alice, role: 'admin', csrf: 'csrf-token-value' });
    assert.equal(row!.created_at, '2026-01-01T00:00:00.000Z');
    assert.equal(row!.expires_at, '2026-01-01T00:30:00.000Z');
    assert.equal(row!.absolute_expires_at, '2026-01-01T08:00:00.000Z');
    for (const value of Object.values(row!)) assert.ok(!String(value).includes(key), 'the raw id is in no column');
    // Not in the file either (WAL included), in any form the cookie carries.
    const bytes = Buffer.concat(
      ['cell.db', 'cell.db-wal'].map((f) => {
        try {
          return readFileSync(join(dir, f));
        } catch {
          return Buffer.alloc(0);
        }
      }),
    );
    assert.equal(bytes.includes(key), false);
    assert.deepEqual(await store.get(key), { uid: alice, role: 'admin', csrf: 'csrf-token-value' });
  });

  it('answers undefined for an unknown id, and an anonymous session has no user', async () => {
    assert.equal(await store.get('no-such-session'), undefined);
    await store.set('anon-key', { csrf: 't' }, IDLE);
    assert.equal((await rows())[0]!.user_id, null);
    assert.deepEqual(await store.get('anon-key'), { csrf: 't' });
  });

  it('idle expiry: the session ends after the idle time without use, and its row is removed', async () => {
    await store.set('k', { uid: alice, role: 'admin' }, IDLE);
    now += IDLE - 1;
    assert.ok(await store.get('k'), 'still alive 1 ms before');
    now += 1;
    assert.equal(await store.get('k'), undefined, 'gone at the idle limit');
    assert.equal((await rows()).length, 0, 'the expired row was deleted');
  });

  it('renewal moves the idle expiry but never the absolute one', async () => {
    await store.set('k', { uid: alice, role: 'admin' }, IDLE);
    // Renew every 20 minutes: idle never runs out…
    for (let t = 20; t < 8 * 60; t += 20) {
      now += 20 * MIN;
      assert.ok(await store.get('k'), `alive at ${t} min`);
      await store.set('k', { uid: alice, role: 'admin', csrf: `v${t}` }, IDLE);
    }
    const [row] = await rows();
    assert.equal(row!.absolute_expires_at, '2026-01-01T08:00:00.000Z', 'the absolute limit was fixed at creation');
    assert.equal(row!.created_at, '2026-01-01T00:00:00.000Z');
    assert.equal(JSON.parse(row!.data).csrf, 'v460', 'the data was updated');
    assert.ok(row!.expires_at > row!.absolute_expires_at, 'idle expiry alone would keep it alive');
    // …but at 8 h it ends anyway.
    now = Date.parse('2026-01-01T08:00:00.000Z');
    assert.equal(await store.get('k'), undefined);
    assert.equal((await rows()).length, 0);
  });

  it('destroy removes one session', async () => {
    await store.set('k1', { uid: alice, role: 'admin' }, IDLE);
    await store.set('k2', { uid: alice, role: 'admin' }, IDLE);
    await store.destroy('k1');
    assert.equal(await store.get('k1'), undefined);
    assert.ok(await store.get('k2'));
  });

  it("destroyUserSessions ends every session of one user, optionally keeping one, and no one else's", async () => {
    for (const k of ['a1', 'a2', 'a3']) await store.set(k, { uid: alice, role: 'admin' }, IDLE);
    await store.set('b1', { uid: bob, role: 'peer' }, IDLE);
    await store.set('anon', { csrf: 'x' }, IDLE);

    await store.destroyUserSessions(database.db, alice, 'a2');
    assert.equal(await store.get('a1'), undefined);
    assert.ok(await store.get('a2'), 'the excepted session survives');
    assert.equal(await store.get('a3'), undefined);
    assert.ok(await store.get('b1'), "another user's session survives");
    assert.ok(await store.get('anon'));

    await store.destroyUserSessions(database.db, alice);
    assert.equal(await store.get('a2'), undefined, 'without an exception, all go');
    assert.ok(await store.get('b1'));
  });

  it('destroyUserSessions works inside a transaction and rolls back with it', async () => {
    await store.set('a1', { uid: alice, role: 'admin' }, IDLE);
    await assert.rejects(
      database.db.transaction().execute(async (trx) => {
        await store.destroyUserSessions(trx, alice);
        throw new Error('the password change failed');
      }),
      /password change failed/,
    );
    assert.ok(await store.get('a1'), 'the rollback restored the session');
  });

  it('purgeExpired deletes idle- and absolute-expired sessions and counts them', async () => {
    await store.set('idle-expired', { uid: alice, role: 'admin' }, 5 * MIN);
    await store.set('absolute-expired', { uid: alice, role: 'admin' }, IDLE);
    await store.set('alive', { uid: bob, role: 'peer' }, IDLE);
    now += 7 * 60 * MIN + 50 * MIN; // 7h50: keep two sessions fresh on idle time
    await store.set('absolute-expired', { uid: alice, role: 'admin' }, IDLE);
    await store.set('alive-late', { uid: bob, role: 'peer' }, IDLE); // created now: absolute at 15h50
    now += 15 * MIN; // 8h05: absolute-expired is past 8h, idle-expired long past its 5 min
    assert.equal(await store.purgeExpired(), 3, 'idle-expired, absolute-expired and alive (idle since 0h)');
    const left = (await rows()).map((r) => r.id_hash);
    assert.deepEqual(left, [sha256Hex('alive-late')]);
    assert.equal(await store.purgeExpired(), 0);
  });

  describe('the in-memory copies (no query per request, yet every write counts at once)', () => {
    it('serves a session and an account from memory until something is written', async () => {
      await store.set('k', { uid: alice, role: 'admin', csrf: 'c1' }, IDLE);
      assert.deepEqual(await store.get('k'), { uid: alice, role: 'admin', csrf: 'c1' });
      assert.equal((await store.account(alice))?.username, 'alice');
      // A write the cache cannot see (straight on the raw handle, which kysely's counter does not watch)…
      database.sqlite.prepare('UPDATE sessions SET data = \'{"uid":1,"role":"admin","csrf":"raw"}\'').run();
      database.sqlite.prepare("UPDATE users SET username = 'renamed-raw' WHERE id = ?").run(alice);
      assert.equal((await store.get('k'))?.csrf, 'c1', 'proves the answer came from memory');
      assert.equal(store.accountInMemory(alice)?.username, 'alice');
      // …and any write through kysely, on any table, retires the copies.
      await database.db.updateTable('users').set({ username: 'alice' }).where('id', '=', alice).execute();
      assert.equal(store.accountInMemory(alice), undefined);
      assert.equal((await store.get('k'))?.csrf, 'raw', 'read again from the database');
    });

    it('a disabled account and a logout count from the very next read', async () => {
      await store.set('k', { uid: bob, role: 'peer' }, IDLE);
      assert.equal((await store.account(bob))?.disabled, false);
      await database.db.updateTable('users').set({ disabled: 1 }).where('id', '=', bob).execute();
      assert.equal((await store.account(bob))?.disabled, true);
      await database.db.updateTable('users').set({ disabled: 0 }).where('id', '=', bob).execute();
      await store.destroy('k');
      assert.equal(await store.get('k'), undefined);
    });

    it('keeps nothing a write overlapped: a load queued behind a transaction that rolls back', async () => {
      await store.set('k', { uid: alice, role: 'admin' }, IDLE);
      let loading: Promise<unknown> | undefined;
      await assert.rejects(
        database.db.transaction().execute(async (trx) => {
          await trx.updateTable('users').set({ disabled: 1 }).where('id', '=', alice).execute();
          loading = store.account(alice); // waits for the connection the transaction holds
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(((await loading) as { disabled: boolean }).disabled, false, 'the load saw the committed row');
      assert.equal((await store.account(alice))?.disabled, false);
    });

    it("a password change ends the user's other sessions from the very next read, and keeps the one that changed it", async () => {
      await store.set('here', { uid: alice, role: 'admin' }, IDLE);
      await store.set('elsewhere', { uid: alice, role: 'admin' }, IDLE);
      await store.set('bobs', { uid: bob, role: 'peer' }, IDLE);
      for (const key of ['here', 'elsewhere', 'bobs']) assert.ok(await store.get(key), `${key} is in memory`);
      assert.equal((await store.account(alice))?.username, 'alice');
      assert.ok(store.accountInMemory(alice));
      // what POST /api/auth/change-password commits
      await database.db.transaction().execute(async (trx) => {
        await storeNewPassword(trx, alice, 'scrypt$new');
        await store.destroyUserSessions(trx, alice, 'here');
      });
      assert.equal(await store.get('elsewhere'), undefined);
      assert.equal((await store.get('here'))?.uid, alice);
      assert.equal((await store.get('bobs'))?.uid, bob, "nobody else's session");
    });

    it('an outside write (another connection to the file) counts from the next turn of the event loop', async () => {
      await store.set('k', { uid: bob, role: 'peer' }, IDLE);
      assert.ok(await store.get('k'));
      assert.equal((await store.account(bob))?.disabled, false);
      assert.equal(store.accountInMemory(bob)?.disabled, false);
      // another process (the sqlite3 shell, a restore script) disables the account and ends the session
      const other = new SQLite(join(dir, 'cell.db'));
      try {
        other.prepare('UPDATE users SET disabled = 1 WHERE id = ?').run(bob);
        // the next request is read in the same poll for I/O as the write's file event, after it
        // (the clock has not moved: data_version is not read again)
        await nextPollForIo();
        assert.equal(store.accountInMemory(bob), undefined, 'the copy is gone');
        assert.equal((await store.account(bob))?.disabled, true);
        other.prepare('DELETE FROM sessions').run();
        await nextPollForIo();
        assert.equal(await store.get('k'), undefined);
      } finally {
        other.prepare('UPDATE users SET disabled = 0 WHERE id = ?').run(bob);
        other.close();
      }
    });

    it('time still ends a session served from memory', async () => {
      await store.set('k', { uid: alice, role: 'admin' }, IDLE);
      assert.ok(await store.get('k'));
      now += IDLE;
      assert.equal(await store.get('k'), undefined);
    });
  });
});
