import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CellConfig } from '../../config.js';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import { silentLogger } from '../../lib/logger.js';
import { writeNetwork } from '../config/service.js';
import { openVault, type Vault } from '../vault/vault.js';
import type { WgPeer } from '../wireguard/config.js';
import type { ApplyResult, PeerChange, WireGuardStatus } from '../wireguard/interface.js';
import { PSK_BUNDLE_SECRET, PSK_DECRYPTS_IN_FLIGHT, PeerNetwork, type LiveInterface } from './network.js';
import { listPeers } from './queries.js';
import { createPeer, peerTraffic } from './service.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Stands in for the real interface: records what was applied, answers status with a counter. */
class FakeInterface implements LiveInterface {
  running = true;
  readonly applied: number[] = [];
  statusCalls = 0;
  constructor(private readonly applyMs = 0) {}
  async start(peers: WgPeer[] = []): Promise<void> {
    this.applied.push(peers.length);
  }
  /** Per-peer changes, as [upserted keys, removed keys]. */
  readonly changes: Array<[string[], string[]]> = [];
  async apply(peers: WgPeer[]): Promise<ApplyResult> {
    await sleep(this.applyMs);
    this.applied.push(peers.length);
    return { written: true, applied: true, peers: peers.length, durationMs: this.applyMs };
  }
  async applyPeerChanges(change: PeerChange): Promise<ApplyResult> {
    await sleep(this.applyMs);
    this.changes.push([change.upsert.map((p) => p.publicKey), change.remove]);
    return { written: true, applied: true, peers: 0, durationMs: this.applyMs };
  }
  async status(): Promise<WireGuardStatus> {
    this.statusCalls++;
    return {
      interface: 'pic-test',
      listenPort: 51820,
      publicKey: 'x',
      address: '10.8.0.1/24',
      running: this.running,
      mode: 'userspace',
      reason: null,
      peers: [
        {
          publicKey: `k${this.statusCalls}`,
          endpoint: null,
          allowedIps: [],
          latestHandshake: null,
          rxBytes: 0,
          txBytes: 0,
          persistentKeepalive: null,
        },
      ],
    };
  }
  async stop(): Promise<void> {}
}

describe('peers on a real SQLite file', () => {
  let temp: TempDatabase;
  let vault: Vault;
  const config = {
    dataDir: '',
    wireguard: { interface: 'pic-test', mode: 'off', netns: null },
  } as unknown as CellConfig;
  let seq = 0;

  before(async () => {
    temp = await openTempDatabase('pic-peers-');
    config.dataDir = temp.dir;
    vault = await openVault({ dataDir: temp.dir, db: temp.database.db, logger: silentLogger });
    await temp.database.db
      .transaction()
      .execute((trx) => writeNetwork(trx, { wireguard_port: 51820, subnet: '10.9.0.0/29', endpoint: null }));
  });
  after(async () => {
    await temp.remove();
  });

  const addPeer = (name: string) =>
    temp.database.db.transaction().execute((trx) => createPeer(trx, vault, { name }, `scrypt$unused$${++seq}`));

  it('the name filter matches % and _ literally', async () => {
    await addPeer('ab');
    await addPeer('a-b');
    const { db } = temp.database;
    assert.deepEqual(
      (await listPeers(db, { q: 'a-b' })).peers.map((p) => p.name),
      ['a-b'],
    );
    assert.equal((await listPeers(db, { q: 'a_b' })).total, 0, '_ is not a one-character wildcard');
    assert.equal((await listPeers(db, { q: '%' })).total, 0, '% is not a wildcard');
    assert.equal((await listPeers(db, { q: 'b' })).total, 2);
    // The API's names cannot hold % or _, so give a row one directly: escaped characters must still
    // match themselves (an escape without SQLite's ESCAPE clause would match nothing here).
    await db.updateTable('peers').set({ name: 'a_b%' }).where('name', '=', 'ab').execute();
    const names = async (q: string) => (await listPeers(db, { q })).peers.map((p) => p.name);
    assert.deepEqual(await names('a_b'), ['a_b%']);
    assert.deepEqual(await names('_b%'), ['a_b%']);
    assert.deepEqual(await names('%'), ['a_b%']);
    assert.deepEqual(await names('b'), ['a-b', 'a_b%']);
    await db.updateTable('peers').set({ name: 'ab' }).where('name', '=', 'a_b%').execute();
  });

  it('a /29 holds five peers after the cell; the sixth is a 409 and nothing is written', async () => {
    await addPeer('p3');
    await addPeer('p4');
    await addPeer('p5');
    const { db } = temp.database;
    const count = async (table: 'users' | 'vault_secrets') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = { users: await count('users'), secrets: await count('vault_secrets') };
    await assert.rejects(addPeer('p6'), (err: { status?: number }) => err.status === 409);
    assert.equal((await listPeers(db, {})).total, 5);
    assert.deepEqual(
      { users: await count('users'), secrets: await count('vault_secrets') },
      before,
      'no login or key left behind',
    );
  });

  it('live peers load their PSKs several at a time, each on its own peer, in id order', async () => {
    const { db } = temp.database;
    let inFlight = 0;
    let mostInFlight = 0;
    const slowVault = {
      async get(name: string) {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        await sleep(5);
        inFlight--;
        return `psk-of-${name}`;
      },
    } as unknown as Vault;
    const network = new PeerNetwork(db, slowVault, config, silentLogger);
    const peers = await network.livePeers();
    const rows = await db.selectFrom('peers').select(['id', 'public_key']).orderBy('id').execute();
    assert.deepEqual(
      peers.map((p) => [p.publicKey, p.presharedKey]),
      rows.map((r) => [r.public_key, `psk-of-peer/${r.id}/psk`]),
    );
    assert.ok(mostInFlight > 1, `decryptions overlap (most at once: ${mostInFlight})`);
    assert.ok(mostInFlight <= PSK_DECRYPTS_IN_FLIGHT);
    // and the real vault's PSKs arrive on the right peers too
    const real = await new PeerNetwork(db, vault, config, silentLogger).livePeers();
    for (const [i, row] of rows.entries()) assert.equal(real[i]!.presharedKey, await vault.get(`peer/${row.id}/psk`));
  });

  it('start-up reads every PSK from one bundle secret once it exists; adds and deletes reach it', async () => {
    const { db } = temp.database;
    const reads: string[] = [];
    const counting = new Proxy(vault, {
      get(target, prop, receiver) {
        if (prop === 'get')
          return (name: string) => {
            reads.push(name);
            return target.get(name);
          };
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const peerReads = () => reads.filter((n) => n.startsWith('peer/')).length;
    await vault.delete(PSK_BUNDLE_SECRET);
    const live = await db
      .selectFrom('peers')
      .select(['id', 'public_key'])
      .where('enabled', '=', 1)
      .orderBy('id')
      .execute();

    const first = new PeerNetwork(db, counting, config, silentLogger, { createInterface: () => new FakeInterface() });
    await first.start();
    assert.equal(peerReads(), live.length, 'the first start reads each PSK on its own');
    await first.stop();
    const bundle = JSON.parse((await vault.get(PSK_BUNDLE_SECRET))!) as { v: number; psks: Record<string, string> };
    assert.equal(bundle.v, 1);
    for (const row of live) assert.equal(bundle.psks[row.public_key], await vault.get(`peer/${row.id}/psk`));

    reads.length = 0;
    let started: WgPeer[] = [];
    const fake = Object.assign(new FakeInterface(), {
      async start(peers: WgPeer[] = []) {
        started = peers;
      },
    });
    const second = new PeerNetwork(db, counting, config, silentLogger, { createInterface: () => fake });
    await second.start();
    assert.equal(peerReads(), 0, `the next start reads no peer's secret: ${reads}`);
    assert.deepEqual(reads, ['wireguard/private_key', PSK_BUNDLE_SECRET], 'its own key and the bundle');
    for (const [i, row] of live.entries()) assert.equal(started[i]!.presharedKey, bundle.psks[row.public_key]);

    // a peer deleted and one added (its PSK handed over in the clear): the bundle follows at stop
    const gone = live[0]!;
    second.forget(gone.id);
    second.rememberPsk(987654, 'not-a-real-psk');
    await db.updateTable('peers').set({ public_key: 'renamed-for-this-test' }).where('id', '=', gone.id).execute();
    await second.stop();
    const after = JSON.parse((await vault.get(PSK_BUNDLE_SECRET))!) as { psks: Record<string, string> };
    assert.equal(after.psks[gone.public_key], undefined, "a deleted peer's PSK leaves the bundle");
    assert.equal(Object.keys(after.psks).length, live.length - 1);
    await db.updateTable('peers').set({ public_key: gone.public_key }).where('id', '=', gone.id).execute();
  });

  it('a burst of syncs coalesces into one apply behind the running one, and each caller sees its change', async () => {
    const fake = new FakeInterface(40);
    const network = new PeerNetwork(temp.database.db, vault, config, silentLogger, { createInterface: () => fake });
    await network.start();
    assert.deepEqual(fake.applied, [5], 'start applies every live peer');
    await temp.database.db.updateTable('peers').set({ enabled: 0 }).where('name', '=', 'p5').execute();
    const first = network.sync();
    await temp.database.db.updateTable('peers').set({ enabled: 0 }).where('name', '=', 'p4').execute();
    const burst = Array.from({ length: 20 }, () => network.sync());
    await Promise.all([first, ...burst]);
    // the first apply may or may not have read the p4 change; the queued one surely did
    assert.equal(fake.applied.length, 3, `20 syncs behind a running one make one more apply, not 20: ${fake.applied}`);
    assert.equal(fake.applied.at(-1), 3);
    await temp.database.db.updateTable('peers').set({ enabled: 1 }).where('name', 'in', ['p4', 'p5']).execute();
    await network.stop();
  });

  it('a change to one peer applies that peer alone, and a burst of them coalesces into one more apply', async () => {
    const { db } = temp.database;
    const fake = new FakeInterface(40);
    const network = new PeerNetwork(db, vault, config, silentLogger, { createInterface: () => fake });
    await network.start();
    const keyOf = async (name: string) =>
      (await db.selectFrom('peers').select('public_key').where('name', '=', name).executeTakeFirstOrThrow()).public_key;
    const [k3, k4, k5] = [await keyOf('p3'), await keyOf('p4'), await keyOf('p5')];
    await db.updateTable('peers').set({ enabled: 0 }).where('name', '=', 'p5').execute();
    await network.peersChanged([k5]);
    assert.deepEqual(fake.changes, [[[], [k5]]], 'a disabled peer: removed, and nothing else touched');
    assert.deepEqual(fake.applied, [5], 'no full apply');
    await db.updateTable('peers').set({ enabled: 1 }).where('name', '=', 'p5').execute();
    const first = network.peersChanged([k5]);
    await db.updateTable('peers').set({ expires_at: '2000-01-01T00:00:00.000Z' }).where('name', '=', 'p4').execute();
    const burst = [network.peersChanged([k4]), network.peersChanged([k3]), network.peersChanged([k4])];
    await Promise.all([first, ...burst]);
    const changes = JSON.stringify(fake.changes);
    assert.equal(fake.changes.length, 3, `three changes behind a running one make one more apply: ${changes}`);
    const upserted = fake.changes.slice(1).flatMap((c) => c[0]);
    const removed = fake.changes.slice(1).flatMap((c) => c[1]);
    assert.deepEqual(upserted.sort(), [k3, k5].sort(), 're-enabled p5 and unchanged-but-named p3 are put back whole');
    assert.deepEqual(removed, [k4], 'expired p4 comes off');
    await db.updateTable('peers').set({ expires_at: null }).where('name', '=', 'p4').execute();
    await network.stop();
  });

  it('while the interface comes up, status says "starting" and a change waits for it, then applies', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const fake = new FakeInterface();
    const slowStart = Object.assign(fake, {
      async start(peers: WgPeer[] = []) {
        await gate;
        fake.applied.push(peers.length);
      },
    });
    const network = new PeerNetwork(temp.database.db, vault, config, silentLogger, {
      createInterface: () => slowStart,
    });
    const up = network.start();
    await sleep(20);
    const during = await network.status();
    assert.equal(during.running, false);
    assert.match(during.reason ?? '', /^starting/);
    assert.equal((await network.liveByKey()).size, 0, 'lists show no live state yet');
    let synced = false;
    const sync = network.sync().then(() => (synced = true));
    await sleep(20);
    assert.equal(synced, false, 'the change waits for the interface');
    open();
    await Promise.all([up, sync]);
    assert.equal(fake.applied.length, 2, `start, then the waiting change: ${fake.applied}`);
    assert.equal((await network.status()).running, true);
    await network.stop();
  });

  it('traffic sampling writes a row per peer on the interface; traffic is the difference of samples', async () => {
    const { db } = temp.database;
    const rows = await db.selectFrom('peers').select(['id', 'public_key']).orderBy('id').execute();
    let rx = 1000;
    const fake = Object.assign(new FakeInterface(), {
      async status(): Promise<WireGuardStatus> {
        rx += 500;
        return {
          interface: 'pic-test',
          listenPort: 51820,
          publicKey: 'x',
          address: '10.8.0.1/24',
          running: true,
          mode: 'userspace',
          reason: null,
          peers: rows.map((r) => ({
            publicKey: r.public_key,
            endpoint: null,
            allowedIps: [],
            latestHandshake: null,
            rxBytes: rx,
            txBytes: 7,
            persistentKeepalive: null,
          })),
        };
      },
    });
    const network = new PeerNetwork(db, vault, config, silentLogger, { createInterface: () => fake });
    await network.start();
    await db.deleteFrom('peer_traffic').execute();
    assert.equal(await network.sampleTraffic(), rows.length);
    assert.equal(await network.sampleTraffic(), rows.length);
    const count = await db
      .selectFrom('peer_traffic')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(count.n), 2 * rows.length);
    const traffic = await peerTraffic(db, rows[0]!.id, '24h');
    assert.deepEqual([traffic.points.length, traffic.rx_bytes, traffic.tx_bytes], [1, 500, 0]);
    await network.stop();
  });

  it('live counters come from a snapshot: fresh for 2 s, then served stale while one refresh runs', async () => {
    const fake = new FakeInterface();
    const network = new PeerNetwork(temp.database.db, vault, config, silentLogger, { createInterface: () => fake });
    await network.start();
    const a = await network.liveByKey();
    const b = await network.liveByKey();
    assert.equal(fake.statusCalls, 1, 'two reads within 2 s run wg show once');
    assert.strictEqual(a, b);
    await sleep(2_100);
    const stale = await network.liveByKey();
    assert.strictEqual(stale, a, 'a stale snapshot answers at once');
    await sleep(10);
    assert.equal(fake.statusCalls, 2, 'and one refresh ran behind it');
    assert.ok((await network.liveByKey()).has('k2'));
    fake.running = false;
    const calls = fake.statusCalls;
    assert.equal((await network.liveByKey()).size, 0, 'not running: empty');
    assert.equal(fake.statusCalls, calls, 'without running wg show');
    await network.stop();
  });
});
