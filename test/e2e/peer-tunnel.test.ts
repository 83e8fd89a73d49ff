/**
 * The end-to-end tunnel test, through the API only: two network namespaces joined by a veth
 * pair (10.250.0.1/30 for the cell, 10.250.0.2/30 for the client — private addresses that exist only
 * inside them), the real cell process (HTTP on 127.0.0.1 in the root namespace) running its
 * WireGuard interface with wireguard-go inside the cell namespace, and a client brought up in the
 * other namespace from the config text GET /api/peers/<name>/config returned. Then a ping of the
 * cell's tunnel address through the tunnel, the handshake and counters in /api/wireguard/status, and
 * disable / enable / delete taking effect on the live interface without a restart.
 *
 * Needs root, `ip`, `wg`, `wireguard-go` and /dev/net/tun; where any is missing it skips, saying why.
 * Everything it creates (namespaces, veth, interfaces, processes, temp files) is removed in after().
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@pic/runtime';
import type { CellProcess } from '../support/cell-process.js';
import { cleanupLog, runTool } from '../support/exec.js';
import type { ApiClient } from '../support/client.js';
import {
  type ParsedWgQuickConfig,
  type WgConfigApi,
  loadWgConfig,
  loadWgTesting,
  sleep,
  startPeersCell,
} from './peers-helpers.js';

const IP = findExecutable('ip');
const WG = findExecutable('wg');
const WIREGUARD_GO = findExecutable('wireguard-go');
const PING = findExecutable('ping');

const suffix = randomBytes(3).toString('hex');
const CELL_NS = `pic-t-cell-${suffix}`;
const CLIENT_NS = `pic-t-client-${suffix}`;
const VETH_CELL = `pictv${suffix}a`;
const VETH_CLIENT = `pictv${suffix}b`;
const CELL_IF = `picw${suffix}`;
const CLIENT_IF = `picc${suffix}`;
const CELL_UNDERLAY = '10.250.0.1';
const CLIENT_UNDERLAY = '10.250.0.2';
const WG_PORT = 51820;
const NETWORK = { wireguard_port: WG_PORT, subnet: '10.8.0.0/24', endpoint: `${CELL_UNDERLAY}:${WG_PORT}` };
const CELL_TUNNEL_ADDRESS = '10.8.0.1';
/** The cell's drift check runs this often here (the default is 300 s). */
const DRIFT_CHECK_SECONDS = 1;

const run = runTool;
const ip = (...args: string[]) => run(IP!, args);
const inNs = (ns: string, file: string, ...args: string[]) => run(IP!, ['netns', 'exec', ns, file, ...args]);

/** Why this machine cannot run the test, or undefined when it can (checked once, before anything is made). */
async function whyNot(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `needs Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return 'needs root to create network namespaces and WireGuard interfaces (run the tests as root)';
  if (!IP) return "'ip' is not installed (Debian package iproute2)";
  if (!WG) return "'wg' is not installed (Debian package wireguard-tools)";
  if (!WIREGUARD_GO) return "'wireguard-go' is not installed (Debian package wireguard-go)";
  if (!existsSync('/dev/net/tun'))
    return '/dev/net/tun is missing: no TUN support, wireguard-go cannot create an interface';
  const probe = `pic-t-probe-${suffix}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `cannot create a network namespace here: ${(err as Error).message}`;
  }
  await ip('netns', 'del', probe).catch(() => undefined);
  return undefined;
}

const skipReason = await whyNot();
if (skipReason) process.stderr.write(`[peer-tunnel] SKIPPING the WireGuard tunnel test: ${skipReason}\n`);

/**
 * One probe of the cell's tunnel address from the client namespace. With `ping`: an ICMP echo.
 * Without it: a TCP connection to a closed port, where "connection refused" is the cell's kernel
 * answering through the tunnel (the client namespace has no other route to 10.8.0.0/24).
 */
async function reachesCell(): Promise<boolean> {
  if (PING) {
    try {
      await inNs(CLIENT_NS, PING, '-c', '1', '-W', '1', '-n', '-q', CELL_TUNNEL_ADDRESS);
      return true;
    } catch {
      return false;
    }
  }
  const script =
    `const s=require('net').connect({host:${JSON.stringify(CELL_TUNNEL_ADDRESS)},port:9});` +
    `s.setTimeout(1000,()=>process.exit(1));s.on('connect',()=>process.exit(0));` +
    `s.on('error',(e)=>process.exit(e.code==='ECONNREFUSED'?0:1));`;
  try {
    await inNs(CLIENT_NS, process.execPath, '-e', script);
    return true;
  } catch {
    return false;
  }
}

/** Probes until one gets through, or `timeoutMs` passes. Resolves with the ms it took, or undefined. */
async function reachesCellWithin(timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await reachesCell()) return Date.now() - started;
    await sleep(250);
  }
  return undefined;
}

describe('WireGuard tunnel through the API (two network namespaces, wireguard-go)', () => {
  let cell: CellProcess | undefined;
  let admin: ApiClient;
  let wg: WgConfigApi;
  let client: ChildProcess | undefined;
  let clientOutput = () => '';
  let parsed: ParsedWgQuickConfig;
  let peerKey: string;
  const tmp = mkdtempSync(join(tmpdir(), 'pic-tunnel-'));

  const status = async () => {
    const res = await admin.get('/api/wireguard/status');
    assert.equal(res.status, 200, res.text);
    return res.body;
  };
  /** Public keys of the peers on the cell's live interface, read with `wg` itself, not through the cell. */
  const interfacePeers = async () => (await inNs(CELL_NS, WG!, 'show', CELL_IF, 'peers')).split('\n').filter(Boolean);
  const ifindex = async () => /^(\d+):/.exec(await ip('-n', CELL_NS, '-o', 'link', 'show', 'dev', CELL_IF))?.[1];

  before(async () => {
    if (skipReason) return;
    wg = await loadWgConfig();
    await ip('netns', 'add', CELL_NS);
    await ip('netns', 'add', CLIENT_NS);
    await ip('link', 'add', VETH_CELL, 'type', 'veth', 'peer', 'name', VETH_CLIENT);
    await ip('link', 'set', VETH_CELL, 'netns', CELL_NS);
    await ip('link', 'set', VETH_CLIENT, 'netns', CLIENT_NS);
    await ip('-n', CELL_NS, 'address', 'add', `${CELL_UNDERLAY}/30`, 'dev', VETH_CELL);
    await ip('-n', CLIENT_NS, 'address', 'add', `${CLIENT_UNDERLAY}/30`, 'dev', VETH_CLIENT);
    for (const [ns, dev] of [
      [CELL_NS, VETH_CELL],
      [CLIENT_NS, VETH_CLIENT],
      [CELL_NS, 'lo'],
      [CLIENT_NS, 'lo'],
    ] as const) {
      await ip('-n', ns, 'link', 'set', 'dev', dev, 'up');
    }

    const ready = await startPeersCell({
      network: NETWORK,
      cellYaml: [
        'rate_limit:',
        '  login_failures: 1000',
        'wireguard:',
        '  mode: userspace',
        `  netns: ${CELL_NS}`,
        `  interface: ${CELL_IF}`,
        `  drift_check_seconds: ${DRIFT_CHECK_SECONDS}`,
        '  keep_up_on_stop: false',
        '',
      ].join('\n'),
      env: { PIC_WIREGUARD_MODE: 'userspace' },
    });
    cell = ready.cell;
    admin = ready.admin;
  });

  after(async () => {
    if (skipReason) return;
    const { problems, attempt } = cleanupLog();
    if (client && client.exitCode === null && client.signalCode === null) {
      const exited = new Promise((resolve) => client!.once('exit', resolve));
      client.kill('SIGTERM');
      await Promise.race([exited, sleep(3_000)]);
      if (client.exitCode === null && client.signalCode === null) client.kill('SIGKILL');
    }
    // SIGTERM: with keep_up_on_stop: false the cell takes its interface down (and its wireguard-go with it)
    await attempt('stop the cell', async () => cell?.destroy());
    // anything still running inside our own namespaces was started by this test
    for (const ns of [CELL_NS, CLIENT_NS]) {
      await attempt(`processes in ${ns}`, async () => {
        const pids = (await ip('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number);
        for (const pid of pids) {
          problems.push(`process ${pid} was still running in ${ns}; killed`);
          process.kill(pid, 'SIGKILL');
        }
      });
      await attempt(`delete ${ns}`, async () => ip('netns', 'del', ns));
    }
    // the veth is deleted with its namespace; if the move into it failed, it is still here
    await ip('link', 'del', VETH_CELL).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
    const left = await ip('netns', 'list');
    assert.ok(!left.includes(suffix), `namespaces left behind: ${left}`);
    assert.deepEqual(problems, [], 'clean-up went wrong');
  });

  it('the cell brings its WireGuard interface up inside its namespace after setup', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const s = await status();
    assert.equal(s.running, true, `running: ${JSON.stringify(s)}\n${cell!.output()}`);
    assert.equal(s.reason, null);
    assert.equal(s.interface, CELL_IF);
    assert.equal(s.listen_port, WG_PORT);
    assert.equal(s.address, `${CELL_TUNNEL_ADDRESS}/24`);
    assert.deepEqual(s.peers, []);
    assert.equal(
      (await inNs(CELL_NS, WG!, 'show', CELL_IF, 'public-key')).trim(),
      s.public_key,
      'the live interface has the key the API reports',
    );
    assert.equal((await inNs(CELL_NS, WG!, 'show', CELL_IF, 'listen-port')).trim(), String(WG_PORT));
    assert.match(await ip('-n', CELL_NS, '-o', 'address', 'show', 'dev', CELL_IF), /inet 10\.8\.0\.1\/24/);
    await assert.rejects(ip('link', 'show', 'dev', CELL_IF), 'the interface is not in the root namespace');
  });

  it('a client using the config from the API pings the cell through the tunnel; status shows the handshake and traffic', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const created = await admin.post('/api/peers', { name: 'laptop' });
    assert.equal(created.status, 201, created.text);
    peerKey = created.body.peer.public_key;
    assert.deepEqual(await interfacePeers(), [peerKey], 'the new peer is on the live interface at once');

    const res = await admin.get('/api/peers/laptop/config');
    assert.equal(res.status, 200, res.text);
    parsed = wg.parseWgQuickConfig(res.text);
    assert.equal(parsed.peers[0]!.endpoint, NETWORK.endpoint);
    const serverPsk = (await inNs(CELL_NS, WG!, 'show', CELL_IF, 'preshared-keys')).trim().split(/\s+/)[1];
    assert.equal(serverPsk, parsed.peers[0]!.presharedKey, 'the PSK in the config is the one on the interface');

    // the client: wireguard-go in its namespace, configured from the parsed text (wg setconf + ip)
    const started = await (await loadWgTesting()).startWireGuardGoIn(CLIENT_NS, CLIENT_IF);
    client = started.child;
    clientOutput = started.output;
    const confFile = join(tmp, 'client.conf');
    writeFileSync(confFile, wg.renderWgConfig(wg.toWgConfig(parsed)), { mode: 0o600 });
    await inNs(CLIENT_NS, WG!, 'setconf', CLIENT_IF, confFile);
    for (const address of parsed.interface.addresses)
      await ip('-n', CLIENT_NS, 'address', 'add', address, 'dev', CLIENT_IF);
    await ip('-n', CLIENT_NS, 'link', 'set', 'dev', CLIENT_IF, 'up');
    for (const route of parsed.peers[0]!.allowedIps) await ip('-n', CLIENT_NS, 'route', 'add', route, 'dev', CLIENT_IF);

    const took = await reachesCellWithin(20_000);
    assert.ok(
      took !== undefined,
      `${PING ? 'ping' : 'TCP probe'} of ${CELL_TUNNEL_ADDRESS} through the tunnel never answered\ncell:\n${cell!.output()}\nclient:\n${clientOutput()}`,
    );
    t.diagnostic(`first answer through the tunnel after ${took} ms (${PING ? 'ping' : 'TCP probe'})`);
    for (let i = 0; i < 3; i++) assert.ok(await reachesCell(), 'the tunnel stays up');

    const s = await status();
    const live = (s.peers as Array<Record<string, any>>).find((p) => p.public_key === peerKey);
    assert.ok(live, `the peer in /api/wireguard/status: ${JSON.stringify(s.peers)}`);
    assert.equal(live.name, 'laptop');
    assert.equal(live.online, true);
    assert.ok(
      live.latest_handshake && Date.now() - Date.parse(live.latest_handshake) < 60_000,
      `a recent handshake: ${live.latest_handshake}`,
    );
    assert.ok(live.rx_bytes > 0, `rx ${live.rx_bytes}`);
    assert.ok(live.tx_bytes > 0, `tx ${live.tx_bytes}`);
    assert.match(
      live.endpoint,
      new RegExp(`^${CLIENT_UNDERLAY.replace(/\./g, '\\.')}:\\d+$`),
      'the client reached the cell from its veth address',
    );

    const peer = (await admin.get('/api/peers/laptop')).body.peer;
    assert.equal(peer.online, true);
    assert.ok(peer.rx_bytes > 0 && peer.tx_bytes > 0);
    assert.equal(peer.endpoint, live.endpoint);
  });

  it('no ping is lost while other peers are added, changed and removed through the API', async (t) => {
    if (skipReason) return t.skip(skipReason);
    if (!PING) return t.skip("needs 'ping' (iputils-ping) to count lost packets");
    assert.ok(parsed, 'needs the client from the previous test');
    const handshake = async () =>
      (await status()).peers.find((p: { public_key: string }) => p.public_key === peerKey).latest_handshake;
    const before = await handshake();
    const continuous = inNs(CLIENT_NS, PING, '-c', '60', '-i', '0.05', '-W', '1', '-n', CELL_TUNNEL_ADDRESS);
    await sleep(300);
    const flood = Array.from({ length: 20 }, (_, i) => ({ name: `flood-${i}` }));
    const batch = await admin.post('/api/peers/batch', { action: 'add', peers: flood });
    assert.equal(batch.status, 201, batch.text);
    assert.equal((await admin.put('/api/peers/flood-0', { enabled: false })).status, 200);
    assert.equal((await admin.put('/api/peers/flood-1', { description: 'only words' })).status, 200);
    assert.equal((await admin.put('/api/peers/laptop', { description: 'the pinging one' })).status, 200);
    const names = flood.map((p) => p.name);
    assert.equal((await admin.post('/api/peers/batch', { action: 'delete', names })).status, 200);
    const pings = await continuous;
    const noLoss = /60 packets transmitted, 60 received, 0% packet loss/;
    assert.match(pings, noLoss, `not one ping was lost during the changes:\n${pings}`);
    assert.deepEqual(await interfacePeers(), [peerKey], 'the batch came and went; laptop stayed');
    assert.equal(await handshake(), before, "laptop's session was kept (no new handshake)");
  });

  it("the drift check finds what was changed with wg behind the cell's back, repairs and audits it", async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(parsed, 'needs the client from the earlier tests');
    const driftEntries = async () => {
      const res = await admin.get('/api/audit?action=wireguard.drift&limit=100');
      assert.equal(res.status, 200, res.text);
      type Entry = { actor: string; target_type: string; target_id: string; details: Record<string, unknown> };
      return res.body.entries as Entry[];
    };
    const seen = (await driftEntries()).length;
    const waitFor = async (what: string, ok: () => Promise<boolean>) => {
      const deadline = Date.now() + (DRIFT_CHECK_SECONDS + 10) * 1000;
      while (!(await ok())) {
        const log = cell!.output().slice(-3000);
        assert.ok(Date.now() < deadline, `${what}: not within ${DRIFT_CHECK_SECONDS + 10} s\n${log}`);
        await sleep(100);
      }
    };

    // 1. the peer removed by hand: the check adds it back, and the client's tunnel works again
    await inNs(CELL_NS, WG!, 'set', CELL_IF, 'peer', peerKey, 'remove');
    assert.deepEqual(await interfacePeers(), [], 'gone from the live interface');
    await waitFor('the removed peer restored', async () => (await interfacePeers()).includes(peerKey));
    const psk = (await inNs(CELL_NS, WG!, 'show', CELL_IF, 'preshared-keys')).trim().split(/\s+/)[1];
    assert.equal(psk, parsed.peers[0]!.presharedKey, 'with its preshared key');
    const took = await reachesCellWithin(45_000);
    assert.ok(took !== undefined, `the tunnel did not come back after the repair\nclient:\n${clientOutput()}`);
    await waitFor('an audit entry', async () => (await driftEntries()).length > seen);
    const [restored] = await driftEntries();
    assert.equal(restored!.actor, 'system');
    assert.equal(restored!.target_type, 'wireguard');
    assert.equal(restored!.target_id, CELL_IF);
    assert.deepEqual(restored!.details['missing'], ['laptop'], JSON.stringify(restored!.details));
    assert.equal(restored!.details['missing_count'], 1);

    // 2. a stranger added and laptop's allowed IPs changed by hand: the stranger goes, laptop's IPs come back
    const stranger = randomBytes(32).toString('base64'); // any 32 bytes make a WireGuard public key
    await inNs(CELL_NS, WG!, 'set', CELL_IF, 'peer', stranger, 'allowed-ips', '10.8.0.200/32');
    await inNs(CELL_NS, WG!, 'set', CELL_IF, 'peer', peerKey, 'allowed-ips', '10.8.0.201/32');
    const allowed = async () => (await inNs(CELL_NS, WG!, 'show', CELL_IF, 'allowed-ips')).trim();
    await waitFor('the stranger removed and the allowed IPs restored', async () => {
      const now = await allowed();
      return !now.includes(stranger) && now.includes(`${peerKey}\t${parsed.interface.addresses[0]!.split('/')[0]}/32`);
    });
    await waitFor('a second audit entry', async () => (await driftEntries()).length > seen + 1);
    const entries = await driftEntries();
    const details = entries.slice(0, entries.length - seen).map((e) => e.details);
    const found = JSON.stringify(details);
    const unexpected = details.some((d) => (d['unexpected'] as string[]).includes(stranger));
    assert.ok(unexpected, `the stranger named by its key: ${found}`);
    assert.ok(
      details.some((d) => (d['changed'] as string[]).includes('laptop')),
      `laptop named as changed: ${found}`,
    );
    assert.ok(!JSON.stringify(entries).includes(parsed.peers[0]!.presharedKey!), 'no key in the audit log');
    assert.ok((await reachesCellWithin(45_000)) !== undefined, 'the tunnel works after the second repair');

    // 3. nothing changed: a check finds nothing and writes nothing
    const count = (await driftEntries()).length;
    await sleep(DRIFT_CHECK_SECONDS * 1000 * 3);
    assert.equal((await driftEntries()).length, count, 'no drift, no entry');
  });

  it('disabling takes the peer off the live interface (no restart): the ping fails; enabling brings it back', async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(parsed, 'needs the client from the previous test');
    const index = await ifindex();
    const off = await admin.put('/api/peers/laptop', { enabled: false });
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(await interfacePeers(), [], 'the peer left the live interface when PUT returned');
    for (let i = 0; i < 3; i++)
      assert.equal(await reachesCell(), false, `probe ${i + 1} must fail while the peer is disabled`);
    assert.ok(
      !(await status()).peers.some((p: { public_key: string }) => p.public_key === peerKey),
      'and left the status',
    );

    const on = await admin.put('/api/peers/laptop', { enabled: true });
    assert.equal(on.status, 200, on.text);
    assert.deepEqual(await interfacePeers(), [peerKey]);
    // the client re-handshakes on its own (it has been retrying since its packets went unanswered)
    const took = await reachesCellWithin(45_000);
    assert.ok(took !== undefined, `the tunnel did not come back after enabling\nclient:\n${clientOutput()}`);
    t.diagnostic(`tunnel back ${took} ms after enabling`);
    assert.equal(await ifindex(), index, 'the same interface throughout: changes were applied in place, not a down/up');
    assert.equal((await status()).running, true);
  });

  it('deleting the peer takes it off the live interface', async (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(parsed, 'needs the client from the earlier tests');
    const index = await ifindex();
    // a second peer that stays: deleting one must not disturb the others
    const other = await admin.post('/api/peers', { name: 'phone' });
    assert.equal(other.status, 201);
    const del = await admin.delete('/api/peers/laptop');
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(await interfacePeers(), [other.body.peer.public_key]);
    for (let i = 0; i < 3; i++)
      assert.equal(await reachesCell(), false, `probe ${i + 1} must fail after the peer was deleted`);
    assert.equal(await ifindex(), index, 'no restart');
  });
});
