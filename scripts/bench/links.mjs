// Bench for issue 15 (linked cells): two cells' CellLinks in this process, each with its own real
// SQLite file, vault and audit log, pushing peers to each other over real HTTP (the peer-sync
// listener and client) with the real MACs and sequence numbers. The cells' "tunnel addresses" are
// loopback addresses (127.81.0.1 and 127.82.0.1, subnets 127.81.0.0/16 and 127.82.0.0/16) so that
// the source-address check holds without WireGuard: WireGuard itself is not in the path (its cost
// per message is a few packets' crypto; see the wireguard section). Goals (issue 15):
//   1,000 peer changes on A reach B: < 5 s in all;  one change, A's write to B's read: p50 < 200 ms.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, median, sleep, tempDir } from './lib.mjs';

const dist = (root, p) => pathToFileURL(join(root, 'packages/cell/dist', p)).href;

export const name = 'links';
export const title = 'Linked cells (issue 15): peer changes pushed from cell A to cell B over peer-sync HTTP';

async function makeCell(root, cleanup, label, subnet) {
  const [{ openTempDatabase }, { openVault }, { AuditLog }, config, keys, service, transport, { silentLogger }] =
    await Promise.all([
      import(dist(root, 'db/temp-database.test-support.js')),
      import(dist(root, 'features/vault/vault.js')),
      import(dist(root, 'features/audit/service.js')),
      import(dist(root, 'features/config/service.js')),
      import(dist(root, 'features/wireguard/keys.js')),
      import(dist(root, 'features/cells/service.js')),
      import(dist(root, 'features/cells/transport.js')),
      import(dist(root, 'lib/logger.js')),
    ]);
  const temp = await openTempDatabase(`pic-bench-links-${label}-`);
  cleanup.add(() => temp.remove());
  const db = temp.database.db;
  const vault = await openVault({ dataDir: temp.dir, db, logger: silentLogger });
  await db.transaction().execute(async (trx) => {
    await config.writeIdentity(trx, { cell_name: label, domain: `${label}.bench` });
    await config.writeNetwork(trx, { wireguard_port: 51820, subnet, endpoint: `${label}.bench:51820` });
  });
  const pair = keys.generateKeyPair();
  await vault.put(service.CELL_KEY_SECRET, pair.privateKey);
  const network = {
    cellPublicKey: async () => pair.publicKey,
    liveByKey: async () => new Map(),
    sync: async () => undefined,
  };
  const syncPort = await freePort();
  const links = new service.CellLinks({
    db,
    vault,
    audit: new AuditLog(db, temp.database.sqlite),
    logger: silentLogger,
    network,
    syncPort,
    transport: transport.httpTransport,
    minRetryMs: 50,
    maxRetryMs: 500,
  });
  const host = subnet.replace(/0\/16$/, '1');
  const listener = new transport.PeerSyncListener(links, async () => host, syncPort, silentLogger);
  listener.start();
  cleanup.add(async () => {
    await listener.stop();
    await links.stop();
  });
  while (!listener.listening) await sleep(10);
  links.start();
  return { db, vault, links, publicKey: pair.publicKey, url: `http://${host}:${syncPort}${service.SYNC_PATH}`, host };
}

export async function run({ root, cleanup, log }) {
  const { dir } = tempDir(cleanup, 'pic-bench-links-');
  void dir;
  const peers = await import(dist(root, 'features/peers/service.js'));
  const a = await makeCell(root, cleanup, 'alpha', '127.81.0.0/16');
  const b = await makeCell(root, cleanup, 'beta', '127.82.0.0/16');
  // link them: invite on A, accept on B, complete on A
  const invite = await a.db.transaction().execute((trx) => a.links.createInvite(trx, {}));
  const accepted = await b.db.transaction().execute((trx) => b.links.accept(trx, { code: invite.code }));
  await a.db.transaction().execute((trx) => a.links.complete(trx, { code: accepted.response }));
  const linkOnB = await b.db.selectFrom('cell_links').select('id').executeTakeFirstOrThrow();
  const countOnB = async () =>
    Number(
      (
        await b.db
          .selectFrom('cell_remote_peers')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('link_id', '=', linkOnB.id)
          .executeTakeFirstOrThrow()
      ).n,
    );
  let n = 0;
  const addPeer = (name) =>
    a.db.transaction().execute((trx) => peers.createPeer(trx, a.vault, { name }, `scrypt$bench$${++n}`));

  log('links: one change at a time, A write → B read (50 samples)');
  const latencies = [];
  for (let i = 0; i < 50; i++) {
    const name = `lat-${i}`;
    const t = performance.now();
    await addPeer(name);
    void a.links.peersChanged(); // what the peers routes' hook does after the commit
    const want = i + 1;
    while ((await countOnB()) < want) await sleep(2);
    latencies.push(performance.now() - t);
  }

  // Creating a peer costs ~10-100 ms on A alone (key generation, two vault encryptions): that is the
  // peers bench's business. The 1,000 changes here are enable/disable flips of the 50 peers above,
  // each its own transaction followed by the hook, so each is one outbox entry pushed to B.
  log(
    'links: 1,000 peer changes on A (enable/disable, each its own transaction and hook call) until B has applied all',
  );
  const linkOnA = await a.db.selectFrom('cell_links').select('id').executeTakeFirstOrThrow();
  const recvOnB = async () =>
    (await b.db.selectFrom('cell_links').select('recv_seq').where('id', '=', linkOnB.id).executeTakeFirstOrThrow())
      .recv_seq;
  const start = await recvOnB();
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    const name = `lat-${i % 50}`;
    await a.db.transaction().execute((trx) => peers.updatePeer(trx, name, { enabled: Math.floor(i / 50) % 2 === 1 }));
    await a.links.peersChanged();
  }
  const writesMs = performance.now() - t0;
  const sent = (
    await a.db.selectFrom('cell_links').select('send_seq').where('id', '=', linkOnA.id).executeTakeFirstOrThrow()
  ).send_seq;
  while ((await recvOnB()) < sent) await sleep(5);
  const totalMs = performance.now() - t0;
  const delivered = sent - start;
  const p50 = median(latencies);
  // A flood of forged messages (A's key and address, a wrong MAC): every one must be refused, and
  // the audit log must get at most 20 of them a minute, however many come (issue 15, item 3).
  log('links: 1,000 forged messages to B (bad MAC), one after the other');
  const transport = await import(dist(root, 'features/cells/transport.js'));
  const auditedDenied = async () =>
    Number(
      (
        await b.db
          .selectFrom('audit_log')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('action', '=', 'cells.peer_sync')
          .where('result', '=', 'denied')
          .executeTakeFirstOrThrow()
      ).n,
    );
  const deniedBefore = await auditedDenied();
  const forged = Buffer.from(
    JSON.stringify({
      v: 1,
      from: a.publicKey,
      to: b.publicKey,
      sent_at: new Date().toISOString(),
      entries: [{ seq: 1, change: { op: 'delete', name: 'x' } }],
    }),
  );
  let refused = 0;
  const tf = performance.now();
  for (let i = 0; i < 1000; i++) {
    const answer = await transport.httpTransport(b.url, forged, { 'x-pic-cell-mac': 'A'.repeat(43) }, a.host);
    if (answer.status === 403) refused++;
  }
  const floodMs = performance.now() - tf;
  const floodAudited = (await auditedDenied()) - deniedBefore;

  const rows = [
    {
      label: '1,000 peer changes A → B, all applied on B (ms)',
      value: totalMs,
      digits: 0,
      goal: { cmp: '<', target: 5000 },
    },
    { label: '  of which writing them on A (ms)', value: writesMs, digits: 0 },
    { label: '  changes delivered (outbox entries)', value: delivered, digits: 0 },
    { label: 'one change, A write → B read, p50 (ms)', value: p50, digits: 1, goal: { cmp: '<', target: 200 } },
    { label: 'one change, A write → B read, max of 50 (ms)', value: Math.max(...latencies), digits: 1 },
    { label: '1,000 forged messages to B: refused', value: refused, digits: 0, goal: { cmp: '>=', target: 1000 } },
    { label: '  refusals per second', value: (1000 * 1000) / floodMs, digits: 0 },
    { label: '  audit entries written for them', value: floodAudited, digits: 0, goal: { cmp: '<=', target: 20 } },
  ];
  return {
    rows,
    notes: ['in one process over loopback HTTP: real SQLite, real MACs and sequence numbers, no WireGuard in the path'],
    json: {
      changes: delivered,
      total_ms: totalMs,
      writes_ms: writesMs,
      p50_ms: p50,
      max_ms: Math.max(...latencies),
      forged_refused: refused,
      forged_ms: floodMs,
      forged_audited: floodAudited,
    },
  };
}
