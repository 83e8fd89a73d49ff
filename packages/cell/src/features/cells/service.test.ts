// Linked cells on real SQLite files: two (or three) cells in this process, each with its own
// database, vault and audit log, joined by an in-memory transport that calls the other cell's
// receive() with the tunnel source address (the e2e test does the same over real WireGuard).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import { openTempDatabase, type TempDatabase } from '../../db/temp-database.test-support.js';
import { silentLogger } from '../../lib/logger.js';
import { HttpError } from '../../http/errors.js';
import { AuditLog } from '../audit/service.js';
import { writeIdentity, writeNetwork } from '../config/service.js';
import { createPeer, deletePeer, updatePeer } from '../peers/service.js';
import { openVault, type Vault } from '../vault/vault.js';
import { cellAddress } from '../wireguard/addresses.js';
import { generateKeyPair, publicKeyOf } from '../wireguard/keys.js';
import { decodeInvite, decodeResponse, encodeCode } from './codes.js';
import { linkKey, mac } from './crypto.js';
import * as q from './queries.js';
import {
  CELL_KEY_SECRET,
  CellLinks,
  type CellLinksOptions,
  type LinkEnforcer,
  MAC_HEADER,
  messageMac,
  subnetsOverlap,
  type Transport,
} from './service.js';

interface TestCell {
  name: string;
  subnet: string;
  temp: TempDatabase;
  vault: Vault;
  links: CellLinks;
  up: boolean;
  /** Every message that reached this cell: raw bytes, MAC, source. */
  inbox: Array<{ raw: Buffer; mac: string; source: string }>;
}

const cells = new Map<string, TestCell>();
let passwordSeq = 0;

/** Delivers to the cell whose tunnel address the URL names, from the sender's tunnel address. */
const transport: Transport = async (url, body, headers, localAddress) => {
  const host = new URL(url).hostname;
  const target = [...cells.values()].find((c) => cellAddress(c.subnet) === host);
  if (!target?.up) throw new Error('connect ECONNREFUSED');
  target.inbox.push({ raw: body, mac: headers[MAC_HEADER]!, source: localAddress! });
  return target.links.receive(body, localAddress, headers[MAC_HEADER]);
};

async function makeCell(name: string, subnet: string, extra: Partial<CellLinksOptions> = {}): Promise<TestCell> {
  const temp = await openTempDatabase(`pic-cells-${name}-`);
  const db = temp.database.db;
  const vault = await openVault({ dataDir: temp.dir, db, logger: silentLogger });
  await db.transaction().execute(async (trx) => {
    await writeIdentity(trx, { cell_name: name, domain: `${name}.lan` });
    await writeNetwork(trx, { wireguard_port: 51820, subnet, endpoint: `${name}.example.org:51820` });
  });
  const keys = generateKeyPair();
  await vault.put(CELL_KEY_SECRET, keys.privateKey);
  // like PeerNetwork: the public key is known in memory (no vault read inside a transaction)
  const network = {
    cellPublicKey: async () => keys.publicKey,
    liveByKey: async () => new Map(),
    sync: async () => undefined,
  };
  const audit = new AuditLog(db, temp.database.sqlite);
  const links = new CellLinks({
    db,
    vault,
    audit,
    logger: silentLogger,
    network,
    syncPort: 7947,
    transport,
    minRetryMs: 20,
    maxRetryMs: 80,
    ...extra,
  });
  const cell = { name, subnet, temp, vault, links, up: true, inbox: [] };
  cells.set(name, cell);
  links.start();
  return cell;
}

const tx = <T>(cell: TestCell, fn: (trx: Transaction<Database>) => Promise<T>) =>
  cell.temp.database.db.transaction().execute(fn);

async function rejects(p: Promise<unknown>, status: number, id: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, status, err.message);
    assert.equal(err.id, id);
    return true;
  });
}

const remoteNames = async (cell: TestCell, link: string) => {
  const found = await q.findLinkByName(cell.temp.database.db, link);
  if (!found) return [];
  return (await q.remotePeers(cell.temp.database.db, found.id)).map((p) => p.name);
};

const auditOf = (cell: TestCell, action: string) =>
  cell.temp.database.db
    .selectFrom('audit_log')
    .select(['action', 'result', 'details', 'actor'])
    .where('action', '=', action)
    .execute();

async function waitFor(check: () => Promise<boolean>, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function link(a: TestCell, b: TestCell) {
  const invite = await tx(a, (trx) => a.links.createInvite(trx, {}));
  const accepted = await tx(b, (trx) => b.links.accept(trx, { code: invite.code }));
  const completed = await tx(a, (trx) => a.links.complete(trx, { code: accepted.response }));
  return { invite, accepted, completed };
}

const addPeer = (cell: TestCell, name: string) =>
  tx(cell, (trx) => createPeer(trx, cell.vault, { name }, `scrypt$unused$${++passwordSeq}`));

describe('linked cells: invite, key proof, peer-sync (real SQLite)', () => {
  let a: TestCell;
  let b: TestCell;
  let c: TestCell;

  before(async () => {
    a = await makeCell('alpha', '10.61.0.0/24');
    b = await makeCell('beta', '10.62.0.0/24');
    c = await makeCell('gamma', '10.63.0.0/24');
  });
  after(async () => {
    for (const cell of cells.values()) {
      await cell.links.stop();
      await cell.temp.remove();
    }
  });

  it('subnet overlap is computed on the shorter prefix', () => {
    assert.equal(subnetsOverlap('10.8.0.0/24', '10.8.0.128/25'), true);
    assert.equal(subnetsOverlap('10.8.0.0/16', '10.8.9.0/24'), true);
    assert.equal(subnetsOverlap('10.8.0.0/24', '10.9.0.0/24'), false);
  });

  it('an invite carries name, key, endpoint, subnet and a nonce; only the nonce hash is stored', async () => {
    const { code } = await tx(a, (trx) => a.links.createInvite(trx, { ttl_minutes: 5 }));
    const invite = decodeInvite(code);
    assert.equal(invite.name, 'alpha');
    assert.equal(invite.subnet, '10.61.0.0/24');
    assert.equal(invite.endpoint, 'alpha.example.org:51820');
    assert.equal(invite.public_key, publicKeyOf((await a.vault.get(CELL_KEY_SECRET))!));
    const rows = await a.temp.database.db.selectFrom('cell_invites').selectAll().execute();
    assert.ok(rows.length >= 1);
    for (const row of rows) assert.ok(!JSON.stringify(row).includes(invite.nonce), 'the nonce itself is not stored');
  });

  it('links A and B: accept answers a key proof, complete verifies it and uses the invite', async () => {
    const { accepted, completed } = await link(a, b);
    assert.equal(accepted.link.name, 'alpha');
    assert.equal(accepted.link.subnet, '10.61.0.0/24');
    assert.equal(completed.name, 'beta');
    assert.equal(completed.subnet, '10.62.0.0/24');
    const peersOfA = await a.links.linkPeers();
    assert.deepEqual(
      peersOfA.map((p) => p.allowedIps),
      [['10.62.0.0/24']],
    );
    // the invite is used once: completing it again is refused
    await rejects(
      tx(a, (trx) => a.links.complete(trx, { code: accepted.response })),
      409,
      'invite_used',
    );
  });

  it('an invite accepted twice is refused (the cell is already linked)', async () => {
    const invite = await tx(a, (trx) => a.links.createInvite(trx, {}));
    await rejects(
      tx(b, (trx) => b.links.accept(trx, { code: invite.code })),
      409,
      'conflict',
    );
  });

  it('an expired invite is refused on accept and on complete', async () => {
    const invite = await tx(a, (trx) => a.links.createInvite(trx, {}));
    const expired = encodeCode({ ...decodeInvite(invite.code), expires_at: '2020-01-01T00:00:00.000Z' });
    await rejects(
      tx(c, (trx) => c.links.accept(trx, { code: expired })),
      410,
      'invite_expired',
    );
    // accepted in time, but completed after the invite expired
    const accepted = await tx(c, (trx) => c.links.accept(trx, { code: invite.code }));
    await a.temp.database.db
      .updateTable('cell_invites')
      .set({ expires_at: '2020-01-01T00:00:00.000Z' })
      .where('nonce_hash', '=', invite.nonce_hash)
      .execute();
    await rejects(
      tx(a, (trx) => a.links.complete(trx, { code: accepted.response })),
      410,
      'invite_expired',
    );
    await c.temp.database.db.deleteFrom('cell_links').execute(); // c is not linked to anyone
  });

  it('a response made with a key other than the one it claims is refused', async () => {
    const invite = decodeInvite((await tx(a, (trx) => a.links.createInvite(trx, {}))).code);
    const claimed = generateKeyPair();
    const actual = generateKeyPair();
    const claims = {
      nonce: invite.nonce,
      name: 'mallory',
      domain: 'mallory.lan',
      public_key: claimed.publicKey,
      endpoint: null,
      subnet: '10.70.0.0/24',
      sync_port: 7947,
    };
    // the MAC is keyed with the X25519 secret of a different private key
    const key = linkKey(actual.privateKey, actual.publicKey, invite.public_key, 'accept');
    const forged = mac(
      key,
      'response',
      claims.nonce,
      invite.public_key,
      claims.public_key,
      claims.name,
      claims.domain,
      '',
      claims.subnet,
      String(claims.sync_port),
    );
    await rejects(
      tx(a, (trx) => a.links.complete(trx, { code: encodeCode({ v: 1, ...claims, mac: forged }) })),
      403,
      'key_proof_failed',
    );
    // and a genuine response whose claims were edited (another subnet) fails too
    const genuine = decodeResponse((await tx(c, (trx) => c.links.accept(trx, { code: encodeCode(invite) }))).response);
    await c.temp.database.db.deleteFrom('cell_links').execute();
    const edited = encodeCode({ ...genuine, subnet: '10.71.0.0/24' });
    await rejects(
      tx(a, (trx) => a.links.complete(trx, { code: edited })),
      403,
      'key_proof_failed',
    );
    assert.equal(await q.findLinkByName(a.temp.database.db, 'mallory'), undefined);
  });

  it('an invited cell pushes nothing until the inviter completes (no refusals pile up there)', async () => {
    await addPeer(c, 'gamma-phone');
    const before = a.inbox.length;
    const invite = await tx(a, (trx) => a.links.createInvite(trx, {}));
    await tx(c, (trx) => c.links.accept(trx, { code: invite.code }));
    const linkOnC = (await q.findLinkByName(c.temp.database.db, 'alpha'))!;
    c.links.kick(linkOnC.id);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.inbox.length, before, 'nothing sent to the inviter yet');
    assert.ok((await q.pendingFor(c.temp.database.db, linkOnC.id, 10)).length >= 1, 'kept in the outbox');
    await c.temp.database.db.deleteFrom('cell_links').execute();
  });

  it('overlapping subnets are refused at accept with the reason', async () => {
    const invite = await tx(a, (trx) => a.links.createInvite(trx, {}));
    const overlapping = encodeCode({
      ...decodeInvite(invite.code),
      name: 'delta',
      domain: 'delta.lan',
      public_key: generateKeyPair().publicKey,
      subnet: '10.62.0.0/25',
    });
    await assert.rejects(
      tx(b, (trx) => b.links.accept(trx, { code: overlapping })),
      (err: HttpError) => {
        assert.equal(err.status, 409);
        assert.match(err.message, /subnet overlap: .*10\.62\.0\.0\/25 overlaps this cell's 10\.62\.0\.0\/24/);
        return true;
      },
    );
  });

  it('a peer added on A appears on B; updated and removed ones follow', async () => {
    await addPeer(a, 'phone');
    await a.links.peersChanged();
    await waitFor(async () => (await remoteNames(b, 'alpha')).includes('phone'));
    await tx(a, (trx) => updatePeer(trx, 'phone', { enabled: false }));
    await a.links.peersChanged();
    await waitFor(async () => {
      const link = await q.findLinkByName(b.temp.database.db, 'alpha');
      const peers = await q.remotePeers(b.temp.database.db, link!.id);
      return peers.find((p) => p.name === 'phone')?.enabled === 0;
    });
    await tx(a, (trx) => deletePeer(trx, a.vault, 'phone', []));
    await a.links.peersChanged();
    await waitFor(async () => !(await remoteNames(b, 'alpha')).includes('phone'));
  });

  it('B down: 3 changes on A wait in the outbox and arrive in order, exactly once, when B is back', async () => {
    b.up = false;
    const before = b.inbox.length;
    await addPeer(a, 'one');
    await a.links.peersChanged();
    await addPeer(a, 'two');
    await a.links.peersChanged();
    await addPeer(a, 'three');
    await a.links.peersChanged();
    const linkOnA = (await q.findLinkByName(a.temp.database.db, 'beta'))!;
    assert.equal((await q.pendingFor(a.temp.database.db, linkOnA.id, 100)).length, 3);
    const recvBefore = (await q.findLinkByName(b.temp.database.db, 'alpha'))!.recv_seq;
    b.up = true;
    await waitFor(async () => (await q.pendingFor(a.temp.database.db, linkOnA.id, 100)).length === 0);
    assert.deepEqual((await remoteNames(b, 'alpha')).sort(), ['one', 'three', 'two']);
    const applied = b.inbox
      .slice(before)
      .flatMap((m) => (JSON.parse(m.raw.toString()) as { entries: Array<{ seq: number }> }).entries.map((e) => e.seq));
    assert.deepEqual(applied, [recvBefore + 1, recvBefore + 2, recvBefore + 3], 'in order, each once');
    assert.equal((await q.findLinkByName(b.temp.database.db, 'alpha'))!.recv_seq, recvBefore + 3);
  });

  it('refuses and audits: a captured message replayed, one byte changed, wrong source, a stranger', async () => {
    const captured = b.inbox[b.inbox.length - 1]!;
    const replay = await b.links.receive(captured.raw, captured.source, captured.mac);
    assert.equal(replay.status, 409);
    assert.equal(replay.body['code'], 'replayed');

    const changed = Buffer.from(captured.raw);
    const at = changed.indexOf('"name":"') + 8;
    changed[at] = changed[at]! ^ 1;
    const tampered = await b.links.receive(changed, captured.source, captured.mac);
    assert.equal(tampered.status, 403);
    assert.equal(tampered.body['code'], 'bad_mac');

    const elsewhere = await b.links.receive(captured.raw, '10.63.0.1', captured.mac);
    assert.equal(elsewhere.body['code'], 'wrong_source');

    // gamma never linked with beta: it signs with its own key, from its own tunnel address
    const gammaKey = (await c.vault.get(CELL_KEY_SECRET))!;
    const gammaPub = publicKeyOf(gammaKey);
    const betaPub = publicKeyOf((await b.vault.get(CELL_KEY_SECRET))!);
    const body = Buffer.from(
      JSON.stringify({
        v: 1,
        from: gammaPub,
        to: betaPub,
        sent_at: new Date().toISOString(),
        entries: [
          {
            seq: 1,
            change: {
              op: 'upsert',
              peer: { name: 'evil', address: '10.63.0.2', public_key: gammaPub, groups: [], enabled: true },
            },
          },
        ],
      }),
    );
    const stranger = await b.links.receive(
      body,
      '10.63.0.1',
      messageMac(linkKey(gammaKey, gammaPub, betaPub, 'sync'), gammaPub, betaPub, body),
    );
    assert.equal(stranger.status, 403);
    assert.equal(stranger.body['code'], 'unknown_cell');

    const denied = (await auditOf(b, 'cells.peer_sync'))
      .filter((r) => r.result === 'denied')
      .map((r) => JSON.parse(r.details).error);
    for (const error of ['replayed', 'bad_mac', 'wrong_source', 'unknown_cell'])
      assert.ok(denied.includes(error), `${error} audited`);
    assert.ok(!(await remoteNames(b, 'alpha')).includes('evil'));
  });

  it('a reordered message (a gap before it) and a stale one are refused', async () => {
    const keyA = (await a.vault.get(CELL_KEY_SECRET))!;
    const pubA = publicKeyOf(keyA);
    const pubB = publicKeyOf((await b.vault.get(CELL_KEY_SECRET))!);
    const recv = (await q.findLinkByName(b.temp.database.db, 'alpha'))!.recv_seq;
    const send = (seq: number, sentAt: string) => {
      const body = Buffer.from(
        JSON.stringify({
          v: 1,
          from: pubA,
          to: pubB,
          sent_at: sentAt,
          entries: [{ seq, change: { op: 'delete', name: 'one' } }],
        }),
      );
      return b.links.receive(
        body,
        cellAddress(a.subnet),
        messageMac(linkKey(keyA, pubA, pubB, 'sync'), pubA, pubB, body),
      );
    };
    assert.equal((await send(recv + 2, new Date().toISOString())).body['code'], 'out_of_order');
    assert.equal((await send(recv + 1, '2020-01-01T00:00:00.000Z')).body['code'], 'stale_message');
    assert.ok((await remoteNames(b, 'alpha')).includes('one'), 'nothing applied');
  });

  it('unlink tells the other side: both lose the link and the synced peers', async () => {
    assert.ok((await remoteNames(b, 'alpha')).length > 0);
    const result = await a.links.unlink('beta', () => undefined);
    assert.equal(result.notified, true);
    assert.equal(await q.findLinkByName(a.temp.database.db, 'beta'), undefined);
    assert.equal(await q.findLinkByName(b.temp.database.db, 'alpha'), undefined);
    assert.equal((await b.temp.database.db.selectFrom('cell_remote_peers').selectAll().execute()).length, 0);
    assert.equal((await a.temp.database.db.selectFrom('cell_outbox').selectAll().execute()).length, 0);
  });

  it('a flood of forged messages: every one refused, 20 audited one by one, the rest in one summary', async () => {
    const forged = Buffer.from(
      JSON.stringify({
        v: 1,
        from: publicKeyOf(generateKeyPair().privateKey),
        to: publicKeyOf((await c.vault.get(CELL_KEY_SECRET))!),
        sent_at: new Date().toISOString(),
        entries: [{ seq: 1, change: { op: 'delete', name: 'x' } }],
      }),
    );
    const denied = () =>
      c.temp.database.db
        .selectFrom('audit_log')
        .select(['details'])
        .where('action', '=', 'cells.peer_sync')
        .where('result', '=', 'denied')
        .where('ip', '=', '10.69.0.7')
        .execute();
    for (let i = 0; i < 100; i++) {
      const answer = await c.links.receive(forged, '10.69.0.7', 'A'.repeat(43));
      assert.equal(answer.status, 403);
      assert.equal(answer.body['code'], 'unknown_cell');
    }
    assert.equal((await denied()).length, 20, 'the first 20 of the minute audited');
    // the window's summary is written when it ends, or (here) when the cell stops
    await c.links.stop();
    const rows = (await denied()).map((r) => JSON.parse(r.details) as Record<string, unknown>);
    assert.equal(rows.length, 21);
    assert.deepEqual(
      { error: rows[20]!['error'], count: rows[20]!['count'], errors: rows[20]!['errors'] },
      { error: 'refusals_counted', count: 80, errors: { unknown_cell: 80 } },
    );
  });
});

describe('what a link policy opens follows the installed services (real SQLite)', () => {
  let x: TestCell;
  let y: TestCell;
  const applied: Array<Parameters<LinkEnforcer['apply']>[0]> = [];
  const enforcer: LinkEnforcer = { apply: async (links) => void applied.push(links) };

  before(async () => {
    x = await makeCell('xray', '10.71.0.0/24', { enforcer });
    y = await makeCell('yankee', '10.72.0.0/24');
    await link(x, y);
  });
  after(async () => {
    for (const cell of [x, y]) {
      await cell.links.stop();
      await cell.temp.remove();
      cells.delete(cell.name);
    }
  });

  const install = (id: string, state: 'installed' | 'installing', ports: object[]) => {
    const now = new Date().toISOString();
    return x.temp.database.db
      .insertInto('service_installations')
      .values({
        service_id: id,
        version: '1.0.0',
        manifest: JSON.stringify({ id, containers: [{ name: 'c', image: 'i', ports }] }),
        manifest_digest: `sha256:${'0'.repeat(64)}`,
        index_version: 1,
        state,
        job_id: null,
        installed_at: now,
        created_at: now,
        updated_at: now,
      })
      .execute();
  };
  const last = () => applied[applied.length - 1]![0]!;

  it('opens the host ports of the named, installed services only; re-applied on each change', async () => {
    await tx(x, (trx) => x.links.setPolicy(trx, 'yankee', { mode: 'services', services: ['calendar', 'email'] }));
    await x.links.enforce();
    assert.deepEqual(last().servicePorts, [], 'nothing is installed yet');

    await install('calendar', 'installed', [
      { container: 5232, protocol: 'tcp', host: 5232 },
      { container: 9000, protocol: 'tcp' }, // not published on the host: not reachable anyway
    ]);
    await install('email', 'installing', [{ container: 25, protocol: 'tcp', host: 25 }]);
    await install('files', 'installed', [{ container: 8443, protocol: 'tcp', host: 8443 }]);
    await x.links.enforce(); // what the store's install and remove notifications call
    assert.deepEqual(last().servicePorts, [{ service: 'calendar', port: 5232, protocol: 'tcp' }]);

    await x.temp.database.db.deleteFrom('service_installations').where('service_id', '=', 'calendar').execute();
    await x.links.enforce();
    assert.deepEqual(last().servicePorts, []);

    await tx(x, (trx) => x.links.setPolicy(trx, 'yankee', { mode: 'cell_only' }));
    await x.links.enforce();
    assert.deepEqual(last(), {
      name: 'yankee',
      subnet: '10.72.0.0/24',
      policy: { mode: 'cell_only' },
      servicePorts: [],
    });
  });
});

describe('one-step invites: the invited cell delivers the same proof itself (real SQLite)', () => {
  let d: TestCell;
  let e: TestCell;
  const opened: boolean[] = [];

  before(async () => {
    d = await makeCell('delta', '10.74.0.0/24');
    e = await makeCell('echo', '10.75.0.0/24');
  });
  after(async () => {
    for (const cell of [d, e]) {
      await cell.links.stop();
      await cell.temp.remove();
      cells.delete(cell.name);
    }
  });

  it('is refused where no link listener can run', async () => {
    await rejects(
      tx(d, (trx) => d.links.createInvite(trx, { one_step: true })),
      409,
      'conflict',
    );
  });

  it('a two-step invite cannot be completed through the link listener', async () => {
    const invite = await tx(d, (trx) => d.links.createInvite(trx, {}));
    const accepted = await tx(e, (trx) => e.links.accept(trx, { code: invite.code }));
    assert.equal(accepted.deliverTo, undefined);
    const answer = await d.links.completeOneStep(accepted.response, '203.0.113.5');
    assert.equal(answer.status, 403);
    assert.equal(answer.body['code'], 'not_one_step');
    assert.equal(await q.findLinkByName(d.temp.database.db, 'echo'), undefined);
    const denied = (await auditOf(d, 'cells.complete')).filter((r) => r.result === 'denied');
    assert.ok(denied.some((r) => r.details.includes('not_one_step')));
    await e.links.unlink('delta', () => undefined);
  });

  it('links both cells with one admin action on each side, and the invite is used once', async () => {
    d.links.attachOneStep({ sync: async (open) => void opened.push(open) });
    const invite = await tx(d, (trx) => d.links.createInvite(trx, { one_step: true }));
    await d.links.oneStepChanged();
    assert.equal(opened.at(-1), true, 'the link listener opens while the invite is open');
    const payload = decodeInvite(invite.code);
    assert.equal(payload.link_port, 51820);
    assert.ok(Date.parse(payload.expires_at) - Date.now() <= 15 * 60_000, 'short-lived by default');

    const accepted = await tx(e, (trx) => e.links.accept(trx, { code: invite.code }));
    assert.deepEqual(accepted.deliverTo, {
      url: 'http://delta.example.org:51820/api/cells/link/complete',
      until: payload.expires_at,
    });
    // a response edited on the way (another key claimed) is refused like in complete
    const forged = decodeResponse(accepted.response);
    const other = encodeCode({ ...forged, public_key: publicKeyOf(generateKeyPair().privateKey) });
    const bad = await d.links.completeOneStep(other, '203.0.113.5');
    assert.equal(bad.body['code'], 'key_proof_failed');

    const answer = await d.links.completeOneStep(accepted.response, '203.0.113.5');
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal((await q.findLinkByName(d.temp.database.db, 'echo'))?.role, 'inviter');
    await waitFor(async () => opened.at(-1) === false);
    const ok = (await auditOf(d, 'cells.complete')).filter((r) => r.result === 'ok');
    assert.ok(ok.some((r) => r.details.includes('one_step') && r.actor === 'cell:echo'));

    const again = await d.links.completeOneStep(accepted.response, '203.0.113.5');
    assert.equal(again.status, 409);
    assert.equal(again.body['code'], 'invite_used');
    // and peer-sync runs as after a two-step link
    await addPeer(d, 'phone');
    await d.links.peersChanged();
    await waitFor(async () => (await remoteNames(e, 'delta')).includes('phone'));
  });
});
