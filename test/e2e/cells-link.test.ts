/**
 * Linked cells end to end: two real cell processes, each running INSIDE its own network namespace
 * (so its peer-sync listener can bind its WireGuard address), each with its own wireguard-go
 * interface, joined by a veth pair (the WireGuard underlay). The test reaches each cell's HTTP API
 * over a second veth pair from the root namespace; a third namespace is a peer device of A.
 *
 * Addresses (private, existing only in the namespaces and on the test's own veth ends):
 *   root ↔ A API 10.214.R.1/.2 (/30), root ↔ B API 10.214.R.5/.6, A ↔ B underlay 10.215.R.1/.2,
 *   A ↔ device underlay 10.216.R.1/.2; tunnels: A 10.81.0.0/24, B 10.82.0.0/24.
 *
 * Needs root, ip, wg, wireguard-go, iptables, /dev/net/tun; skips loudly, saying why, when not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CELL_ARGS } from '../support/cell-process.js';
import { ADMIN, ApiClient } from '../support/client.js';
import { withCellDb } from '../support/db.js';
import { loadWgConfig, loadWgTesting, sleep } from './peers-helpers.js';
import { decryptAll, loadAge } from './vault-helpers.js';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/cell-process.js';
import type * as CellsCrypto from '../../packages/cell/src/features/cells/crypto.js';
import type * as CellsService from '../../packages/cell/src/features/cells/service.js';

const execFileP = promisify(execFile);
const testing = await loadWgTesting();
const which = (name: string) =>
  ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin']
    .map((d) => join(d, name))
    .find((p) => existsSync(p));
const IP = which('ip');
const PING = which('ping');

const R = 1 + (randomBytes(1)[0]! % 250);
const suffix = randomBytes(3).toString('hex');
const NS = { a: `pic-ca-${suffix}`, b: `pic-cb-${suffix}`, d: `pic-cd-${suffix}` };
const IFACE = { a: `pica${suffix}`, b: `picb${suffix}`, d: `picd${suffix}` };
const API = { a: `10.214.${R}.2`, b: `10.214.${R}.6` };
const UNDER = { a: `10.215.${R}.1`, b: `10.215.${R}.2`, ad: `10.216.${R}.1`, d: `10.216.${R}.2` };
const SUBNET = { a: '10.81.0.0/24', b: '10.82.0.0/24' };
const WG_PORT = 51820;

async function whyNot(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, WireGuard interfaces, iptables)';
  const base = testing.wireguardTestSkipReason();
  if (base) return base;
  if (!which('iptables')) return "'iptables' is not installed (Debian package iptables)";
  if (!PING) return "'ping' is not installed (Debian package iputils-ping)";
  return undefined;
}
const skipReason = await whyNot();
if (skipReason) process.stderr.write(`[cells-link] SKIPPING the linked-cells test: ${skipReason}\n`);

async function run(file: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(file, args, { timeout: 15_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}
const ip = (...args: string[]) => run(IP!, args);
const inNs = (ns: string, file: string, ...args: string[]) => run(IP!, ['netns', 'exec', ns, file, ...args]);

interface NsCell {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** The real cell process, started inside `ns`, its API on `host` (the namespace's end of the root veth). */
async function startCellIn(ns: string, dataDir: string, host: string): Promise<NsCell> {
  const child = spawn(IP!, ['netns', 'exec', ns, process.execPath, ...CELL_ARGS], {
    env: { ...process.env, PIC_PORT: '0', PIC_HOST: host, PIC_DATA_DIR: dataDir, PIC_WIREGUARD_MODE: 'userspace' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cell in ${ns} did not start:\n${out}`)), 30_000);
    child.stdout!.on('data', () => {
      const m = /PIC cell listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cell in ${ns} exited with ${code}:\n${out}`));
    });
  });
  return { child, url, output: () => out };
}

async function stopCell(cell: NsCell | undefined): Promise<void> {
  if (!cell || cell.child.exitCode !== null || cell.child.signalCode !== null) return;
  const exited = new Promise((resolve) => cell.child.once('exit', resolve));
  cell.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 15_000,
  every = 100,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${last ? ` (${String(last)})` : ''}`);
    await sleep(every);
  }
}

// A leaves peer-to-peer forwarding to the admin (no forwarding flag from the WireGuard module):
// what forwards the linked traffic through A is the cells feature's own doing.
const yaml = (iface: string, forwardBetweenPeers = true) =>
  [
    'rate_limit:',
    '  login_failures: 1000',
    '  api_per_minute: 100000',
    'wireguard:',
    '  mode: userspace',
    `  interface: ${iface}`,
    `  forward_between_peers: ${forwardBetweenPeers}`,
    'cells:',
    '  retry_max_seconds: 1',
    '',
  ].join('\n');

describe('linked cells: two real cells in network namespaces, linked over WireGuard', { skip: skipReason }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pic-cells-e2e-'));
  const dirs = { a: join(tmp, 'a'), b: join(tmp, 'b') };
  let A: NsCell | undefined;
  let B: NsCell | undefined;
  let adminA: ApiClient;
  let adminB: ApiClient;
  let device: ChildProcess | undefined;
  let listener: ChildProcess | undefined;

  async function setUp(cell: NsCell, name: string, subnet: string, endpoint: string): Promise<ApiClient> {
    const admin = new ApiClient(cell.url);
    const network = { wireguard_port: WG_PORT, subnet, endpoint };
    for (const body of [ADMIN, { cell_name: name, domain: `${name}.test` }, network, {}]) {
      const res = await admin.post('/api/setup/step', body);
      assert.equal(res.status, 200, res.text);
    }
    assert.equal((await admin.post('/api/setup/complete')).status, 200);
    await admin.fetchCsrf();
    return admin;
  }
  const signIn = async (url: string) => {
    const admin = new ApiClient(url);
    assert.equal((await admin.post('/api/auth/login', ADMIN)).status, 200);
    await admin.fetchCsrf();
    return admin;
  };
  const remote = async (admin: ApiClient, link: string) => {
    const res = await admin.get(`/api/cells/${link}/peers`);
    return res.status === 200 ? (res.body.peers as Array<{ name: string }>).map((p) => p.name) : undefined;
  };
  const pings = async () => {
    try {
      await inNs(NS.d, PING!, '-c', '1', '-W', '1', '-n', '-q', '10.82.0.1');
      return true;
    } catch {
      return false;
    }
  };
  const wgPeers = async (ns: string, iface: string) =>
    (await inNs(ns, 'wg', 'show', iface, 'peers')).split('\n').filter(Boolean);
  const flagOfA = async () => (await inNs(NS.a, 'sysctl', '-n', `net.ipv4.conf.${IFACE.a}.forwarding`)).trim();
  /** POSTs each body to B's peer-sync listener from A's namespace and tunnel address; the answers, in order. */
  const pushFromA = async (bodies: string[], mac: string): Promise<string[]> => {
    const script =
      `const http=require('http');const bodies=JSON.parse(process.argv[1]);const out=[];` +
      `const one=(b)=>new Promise((ok)=>{const r=http.request('http://10.82.0.1:7947/api/cells/peer-sync/push',` +
      `{method:'POST',localAddress:'10.81.0.1',agent:false,` +
      `headers:{'content-type':'application/json','x-pic-cell-mac':process.argv[2]}},` +
      `(res)=>{let t='';res.on('data',(d)=>t+=d);res.on('end',()=>ok(res.statusCode+' '+t))});` +
      `r.on('error',(e)=>ok('error '+e.message));r.end(b)});` +
      `(async()=>{for(const b of bodies)out.push(await one(b));console.log(JSON.stringify(out))})();`;
    return JSON.parse(await inNs(NS.a, process.execPath, '-e', script, JSON.stringify(bodies), mac)) as string[];
  };
  /** A TCP connection from A's peer device to B's tunnel address: its first line, or why not. */
  const connectFromDevice = async (port: number): Promise<string> => {
    const script =
      `const s=require('net').connect(${port},'10.82.0.1');s.setTimeout(1500,()=>{console.log('timeout');process.exit(0)});` +
      `s.once('data',(d)=>{console.log('ok '+String(d).trim());process.exit(0)});` +
      `s.on('error',(e)=>{console.log('error '+e.code);process.exit(0)});`;
    return (await inNs(NS.d, process.execPath, '-e', script)).trim();
  };

  before(async () => {
    for (const ns of Object.values(NS)) {
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const veth = async (ns1: string | null, addr1: string, ns2: string, addr2: string, prefix: number) => {
      const e1 = `pv${randomBytes(4).toString('hex')}`;
      const e2 = `pv${randomBytes(4).toString('hex')}`;
      await ip('link', 'add', e1, ...(ns1 ? ['netns', ns1] : []), 'type', 'veth', 'peer', 'name', e2, 'netns', ns2);
      await ip(...(ns1 ? ['-n', ns1] : []), 'address', 'add', `${addr1}/${prefix}`, 'dev', e1);
      await ip('-n', ns2, 'address', 'add', `${addr2}/${prefix}`, 'dev', e2);
      await ip(...(ns1 ? ['-n', ns1] : []), 'link', 'set', e1, 'up');
      await ip('-n', ns2, 'link', 'set', e2, 'up');
    };
    await veth(null, `10.214.${R}.1`, NS.a, API.a, 30);
    await veth(null, `10.214.${R}.5`, NS.b, API.b, 30);
    await veth(NS.a, UNDER.a, NS.b, UNDER.b, 24);
    await veth(NS.a, UNDER.ad, NS.d, UNDER.d, 24);
    // forwarding is off in the namespaces, and the test never turns it on: the cell must
    for (const ns of [NS.a, NS.b]) assert.equal((await inNs(ns, 'sysctl', '-n', 'net.ipv4.ip_forward')).trim(), '0');

    for (const [k, iface] of [
      ['a', IFACE.a],
      ['b', IFACE.b],
    ] as const) {
      rmSync(dirs[k], { recursive: true, force: true });
      await run('mkdir', ['-p', dirs[k]]);
      writeFileSync(join(dirs[k], 'cell.yaml'), yaml(iface, k !== 'a'));
    }
    A = await startCellIn(NS.a, dirs.a, API.a);
    B = await startCellIn(NS.b, dirs.b, API.b);
    adminA = await setUp(A, 'alpha', SUBNET.a, `${UNDER.a}:${WG_PORT}`);
    adminB = await setUp(B, 'beta', SUBNET.b, `${UNDER.b}:${WG_PORT}`);
    for (const admin of [adminA, adminB]) {
      await waitFor(
        'peer-sync listener up',
        async () => (await admin.get('/api/status')).body?.subsystems?.cells?.state === 'ok',
        20_000,
        250,
      );
    }
  });

  after(async () => {
    if (device) await testing.stopChild(device);
    if (listener) await testing.stopChild(listener);
    await stopCell(A);
    await stopCell(B);
    for (const ns of Object.values(NS)) {
      const pids = (await ip('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await ip('netns', 'del', ns).catch(() => undefined);
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  let response = '';
  let linkedKeyOfB = '';
  let inviteCode = '';

  it("links A and B with an invite and a response that proves B's key", async () => {
    // no link yet: the cells feature has not touched forwarding
    assert.equal((await adminA.get('/api/status')).body.subsystems.cells.forwarding.state, 'not_needed');
    assert.equal(await flagOfA(), '0');
    const invite = await adminA.post('/api/cells/invites', {});
    assert.equal(invite.status, 201, invite.text);
    assert.match(invite.body.qr_svg, /^<\?xml|<svg/);
    inviteCode = invite.body.code;
    const accepted = await adminB.post('/api/cells/accept', { code: inviteCode });
    assert.equal(accepted.status, 201, accepted.text);
    response = accepted.body.response;
    const completed = await adminA.post('/api/cells/complete', { code: response });
    assert.equal(completed.status, 201, completed.text);
    assert.equal(completed.body.cell.name, 'beta');
    linkedKeyOfB = completed.body.cell.public_key;
    const listA = await adminA.get('/api/cells');
    assert.equal(listA.body.cells[0].subnet, SUBNET.b);
    // the site-to-site peers are on both interfaces, and each routes the other's subnet into its tunnel
    await waitFor("B on A's interface", async () =>
      (await wgPeers(NS.a, IFACE.a)).includes(completed.body.cell.public_key),
    );
    assert.equal((await wgPeers(NS.b, IFACE.b)).length, 1);
    // The route follows the peer after the commit, as the peer follows it: wait for it the same way.
    await waitFor("B's subnet routed into A's tunnel", async () =>
      new RegExp(`dev ${IFACE.a}`).test(await inNs(NS.a, IP!, 'route', 'show', SUBNET.b)),
    );
    await waitFor('handshake', async () => (await adminA.get('/api/cells')).body.cells[0].last_handshake, 15_000, 250);
    // linked: A forwards on its interface (in from its peers, out to B, and back), and says so;
    // the machine-wide switch stays as it was (a link does not need it)
    const forwarding = await waitFor('forwarding on A', async () => {
      const f = (await adminA.get('/api/status')).body.subsystems.cells.forwarding;
      return f.state === 'on' ? f : undefined;
    });
    assert.equal(forwarding.setting, `net.ipv4.conf.${IFACE.a}.forwarding`);
    assert.equal(await flagOfA(), '1');
    assert.equal((await inNs(NS.a, 'sysctl', '-n', 'net.ipv4.ip_forward')).trim(), '0');
  });

  it('an invite used twice and an expired invite are refused and audited', async () => {
    const again = await adminA.post('/api/cells/complete', { code: response });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.code, 'invite_used');
    const twice = await adminB.post('/api/cells/accept', { code: inviteCode });
    assert.equal(twice.status, 409, twice.text);
    const payload = JSON.parse(Buffer.from(inviteCode, 'base64url').toString()) as Record<string, unknown>;
    const expired = Buffer.from(JSON.stringify({ ...payload, expires_at: '2020-01-01T00:00:00.000Z' })).toString(
      'base64url',
    );
    const late = await adminB.post('/api/cells/accept', { code: expired });
    assert.equal(late.status, 410, late.text);
    assert.equal(late.body.code, 'invite_expired');
    const audited = withCellDb(
      dirs.a,
      (db) =>
        db.prepare("select result, details from audit_log where action = 'cells.complete' order by id").all() as Array<{
          result: string;
          details: string;
        }>,
    );
    assert.ok(
      audited.some((r) => r.result === 'error' && r.details.includes('invite_used')),
      JSON.stringify(audited),
    );
    const auditedB = withCellDb(
      dirs.b,
      (db) =>
        db.prepare("select result, details from audit_log where action = 'cells.accept' order by id").all() as Array<{
          details: string;
        }>,
    );
    assert.ok(
      auditedB.some((r) => r.details.includes('invite_expired')),
      JSON.stringify(auditedB),
    );
  });

  it("a peer device of A pings B's WireGuard address when the link allows it, and not when it does not", async () => {
    const created = await adminA.post('/api/peers', { name: 'dev', allowed_ips: [SUBNET.a, SUBNET.b] });
    assert.equal(created.status, 201, created.text);
    const text = (await adminA.get('/api/peers/dev/config')).text.replace(
      /Endpoint = .*/,
      `Endpoint = ${UNDER.ad}:${WG_PORT}`,
    );
    const wg = await loadWgConfig();
    const parsed = wg.parseWgQuickConfig(text);
    const started = await testing.startWireGuardGoIn(NS.d, IFACE.d);
    device = started.child;
    const file = join(tmp, 'dev.conf');
    writeFileSync(file, wg.renderWgConfig(wg.toWgConfig(parsed)), { mode: 0o600 });
    await inNs(NS.d, 'wg', 'setconf', IFACE.d, file);
    for (const address of parsed.interface.addresses) await inNs(NS.d, IP!, 'address', 'add', address, 'dev', IFACE.d);
    await inNs(NS.d, IP!, 'link', 'set', 'dev', IFACE.d, 'up');
    for (const cidr of parsed.peers[0]!.allowedIps) await inNs(NS.d, IP!, 'route', 'replace', cidr, 'dev', IFACE.d);

    await waitFor("ping B from A's device (policy cell_only)", pings, 20_000, 250);
    const none = await adminB.put('/api/cells/alpha/policy', { policy: { mode: 'none' } });
    assert.equal(none.status, 200, none.text);
    await waitFor("ping refused by B's firewall (policy none)", async () => !(await pings()), 10_000, 100);
    for (let i = 0; i < 3; i++) assert.equal(await pings(), false, 'B drops what its policy does not allow');
    const chain = await inNs(NS.b, 'iptables', '-S', 'PIC-CELLS');
    assert.match(chain, /-s 10\.81\.0\.0\/24 -j DROP/);
    // applied again and again (link, policy changes, the 30 s re-assertion): never a rule twice
    assert.equal(chain.trim().split('\n').length, 4, chain); // -N, conntrack, peer-sync, drop
    for (const hook of ['INPUT', 'FORWARD']) {
      const jumps = (await inNs(NS.b, 'iptables', '-S', hook)).split('\n').filter((l) => l.includes('PIC-CELLS'));
      assert.equal(jumps.length, 1, `${hook}: ${jumps.join('; ')}`);
    }
    assert.equal((await adminB.put('/api/cells/alpha/policy', { policy: { mode: 'cell_only' } })).status, 200);
    await waitFor('ping again (cell_only)', pings, 10_000, 250);
  });

  it("policy services opens the named installed services' ports on B to A's device; cell_only does not", async () => {
    // An installed service on B that publishes host port 18080 on B's tunnel address: its record
    // (as the store writes it) and a listener standing in for its container. Port 18081 belongs
    // to no service. Real firewall, real tunnel, real connections from A's peer device.
    const manifest = {
      id: 'echo-svc',
      name: 'Echo',
      version: '1.0.0',
      containers: [{ name: 'server', image: 'x', ports: [{ container: 8080, protocol: 'tcp', host: 18080 }] }],
    };
    const now = new Date().toISOString();
    withCellDb(dirs.b, (db) =>
      db
        .prepare(
          'insert into service_installations (service_id, version, manifest, manifest_digest, index_version, ' +
            "state, job_id, installed_at, created_at, updated_at) values (?, ?, ?, ?, 1, 'installed', null, ?, ?, ?)",
        )
        .run('echo-svc', '1.0.0', JSON.stringify(manifest), `sha256:${'0'.repeat(64)}`, now, now, now),
    );
    const script =
      `const net=require('net');for(const p of [18080,18081])` +
      `net.createServer((s)=>s.end('port '+p+'\\n')).listen(p,'10.82.0.1');`;
    listener = spawn(IP!, ['netns', 'exec', NS.b, process.execPath, '-e', script], { stdio: 'ignore' });
    try {
      await waitFor('the listener on B', async () => /10\.82\.0\.1:18080/.test(await inNs(NS.b, 'ss', '-ltn')));
      // cell_only: the cell answers ping, the service port does not
      assert.equal(await pings(), true);
      assert.match(await connectFromDevice(18080), /^(timeout|error)/, 'cell_only must not reach a service');
      const open = await adminB.put('/api/cells/alpha/policy', {
        policy: { mode: 'services', services: ['echo-svc'] },
      });
      assert.equal(open.status, 200, open.text);
      assert.equal(
        await waitFor('echo-svc reachable', async () => (await connectFromDevice(18080)) === 'ok port 18080'),
        true,
      );
      // nothing beyond the named service: a port of no service stays closed
      assert.match(await connectFromDevice(18081), /^(timeout|error)/);
      // a service named but not installed opens nothing
      const other = await adminB.put('/api/cells/alpha/policy', { policy: { mode: 'services', services: ['files'] } });
      assert.equal(other.status, 200, other.text);
      await waitFor('echo-svc closed (another service named)', async () =>
        /^(timeout|error)/.test(await connectFromDevice(18080)),
      );
      assert.equal((await adminB.put('/api/cells/alpha/policy', { policy: { mode: 'cell_only' } })).status, 200);
      await waitFor('echo-svc closed again (cell_only)', async () =>
        /^(timeout|error)/.test(await connectFromDevice(18080)),
      );
      assert.equal(await pings(), true, 'the cell itself still answers');
    } finally {
      await testing.stopChild(listener);
      listener = undefined;
      withCellDb(dirs.b, (db) => db.prepare("delete from service_installations where service_id = 'echo-svc'").run());
    }
  });

  it('a peer added on A appears on B within 2 s; removed, it disappears', async () => {
    const started = Date.now();
    assert.equal((await adminA.post('/api/peers', { name: 'laptop' })).status, 201);
    await waitFor('laptop on B', async () => (await remote(adminB, 'alpha'))?.includes('laptop'), 2_000, 20);
    const took = Date.now() - started;
    assert.ok(took < 2_000, `took ${took} ms`);
    assert.equal((await adminA.delete('/api/peers/laptop')).status, 200);
    await waitFor('laptop gone from B', async () => !(await remote(adminB, 'alpha'))?.includes('laptop'), 2_000, 20);
  });

  it('B stopped: 3 changes on A arrive in order, exactly once, when B is back', async () => {
    await stopCell(B);
    for (const name of ['p1', 'p2', 'p3']) assert.equal((await adminA.post('/api/peers', { name })).status, 201);
    const pending = await waitFor(
      '3 pending on A',
      async () => {
        const n = (await adminA.get('/api/cells')).body.cells[0].pending_messages as number;
        return n >= 3 ? n : undefined;
      },
      5_000,
    );
    assert.equal(pending, 3);
    const recvBefore = withCellDb(
      dirs.b,
      (db) => db.prepare("select recv_seq from cell_links where name = 'alpha'").get().recv_seq as number,
    );
    B = await startCellIn(NS.b, dirs.b, API.b);
    adminB = await signIn(B.url);
    await waitFor(
      'p1-p3 on B',
      async () => {
        const names = await remote(adminB, 'alpha');
        return names && ['p1', 'p2', 'p3'].every((n) => names.includes(n));
      },
      20_000,
      100,
    );
    await waitFor(
      "A's outbox empty",
      async () => (await adminA.get('/api/cells')).body.cells[0].pending_messages === 0,
      5_000,
    );
    const applied = withCellDb(dirs.b, (db) =>
      (
        db
          .prepare("select details from audit_log where action = 'cells.peer_sync' and result = 'ok' order by id")
          .all() as Array<{ details: string }>
      )
        .map((r) => JSON.parse(r.details) as { first_seq: number; last_seq: number })
        .filter((d) => d.last_seq > recvBefore),
    );
    const seqs = applied.flatMap((d) =>
      Array.from({ length: d.last_seq - d.first_seq + 1 }, (_, i) => d.first_seq + i),
    );
    assert.deepEqual(seqs, [recvBefore + 1, recvBefore + 2, recvBefore + 3], 'each change applied once, in order');
  });

  it('a sync message from a cell that was never linked is refused and audited', async () => {
    // sent through the tunnel from A's address (the only one B's firewall lets reach peer-sync),
    // signed for a key B never linked
    const stranger = randomBytes(32).toString('base64');
    const body = JSON.stringify({
      v: 1,
      from: stranger,
      to: stranger,
      sent_at: new Date().toISOString(),
      entries: [{ seq: 1, change: { op: 'delete', name: 'p1' } }],
    });
    const [out] = await pushFromA([body], 'A'.repeat(43));
    assert.match(out!, /^403 .*unknown_cell/);
    const denied = withCellDb(
      dirs.b,
      (db) =>
        db
          .prepare(
            "select count(*) n from audit_log where action = 'cells.peer_sync' and result = 'denied' " +
              "and details like '%unknown_cell%'",
          )
          .get().n as number,
    );
    assert.ok(denied >= 1);
    assert.ok((await remote(adminB, 'alpha'))!.includes('p1'), 'nothing applied');
  });

  it('a replayed message and one with a byte changed, sent through the tunnel from A, are refused', async () => {
    // A's own key (read from A's vault with A's key file, as A itself would) signs the messages,
    // sent from A's namespace with A's tunnel address as the source: only the content is wrong
    const privateA = (await decryptAll(await loadAge(), dirs.a)).get('wireguard/private_key')!;
    const dist = (f: string) => pathToFileURL(join(REPO_ROOT, 'packages', 'cell', 'dist', 'features', 'cells', f)).href;
    const crypto = (await import(dist('crypto.js'))) as typeof CellsCrypto;
    const service = (await import(dist('service.js'))) as typeof CellsService;
    const linkOnB = (await adminB.get('/api/cells/alpha')).body.cell;
    const publicA = linkOnB.public_key as string;
    const key = crypto.linkKey(privateA, publicA, linkedKeyOfB, 'sync');
    const message = (seq: number) =>
      JSON.stringify({
        v: 1,
        from: publicA,
        to: linkedKeyOfB,
        sent_at: new Date().toISOString(),
        entries: [{ seq, change: { op: 'delete', name: 'p1' } }],
      });
    const sendFromA = async (body: string, mac: string) => (await pushFromA([body], mac))[0]!;
    // replayed: a sequence number B has already applied, with a genuine MAC
    const old = message(linkOnB.received_seq as number);
    const replay = await sendFromA(old, service.messageMac(key, publicA, linkedKeyOfB, Buffer.from(old)));
    assert.match(replay, /^409 .*"code":"replayed"/);
    // one byte changed after the MAC was made (p1 → q1)
    const next = message((linkOnB.received_seq as number) + 1);
    const mac = service.messageMac(key, publicA, linkedKeyOfB, Buffer.from(next));
    const tampered = await sendFromA(next.replace('"name":"p1"', '"name":"q1"'), mac);
    assert.match(tampered, /^403 .*"code":"bad_mac"/);
    assert.ok((await remote(adminB, 'alpha'))!.includes('p1'), 'nothing applied');
    const denied = withCellDb(dirs.b, (db) =>
      (
        db
          .prepare("select details from audit_log where action = 'cells.peer_sync' and result = 'denied'")
          .all() as Array<{ details: string }>
      ).map((r) => (JSON.parse(r.details) as { error: string }).error),
    );
    assert.ok(denied.includes('replayed') && denied.includes('bad_mac'), denied.join(', '));
  });

  it('a flood of forged messages: every one refused, the audit log rationed, the rest summed up', async () => {
    const stranger = randomBytes(32).toString('base64');
    const forged = (i: number) =>
      JSON.stringify({
        v: 1,
        from: stranger,
        to: linkedKeyOfB,
        sent_at: new Date().toISOString(),
        entries: [{ seq: i + 1, change: { op: 'delete', name: 'p1' } }],
      });
    const deniedFromA = () =>
      withCellDb(
        dirs.b,
        (db) =>
          db
            .prepare(
              "select details from audit_log where action = 'cells.peer_sync' and result = 'denied' and ip = ? order by id",
            )
            .all('10.81.0.1') as Array<{ details: string }>,
      ).map((r) => JSON.parse(r.details) as { error: string; count?: number });
    const before = deniedFromA().length;
    const answers = await pushFromA(
      Array.from({ length: 60 }, (_, i) => forged(i)),
      'A'.repeat(43),
    );
    assert.equal(answers.length, 60);
    for (const a of answers) assert.match(a, /^403 .*unknown_cell/, 'every forged message is refused');
    const audited = deniedFromA().length - before;
    // 20 a minute from one source, and the earlier tests' refusals from A count in the same minute
    assert.ok(audited > 0 && audited <= 20, `${audited} audited one by one`);
    // the rest is written as one entry when the window ends, or when the cell stops: stop B
    await stopCell(B);
    const summaries = deniedFromA().filter((d) => d.error === 'refusals_counted');
    assert.equal(summaries.length, 1, JSON.stringify(summaries));
    assert.equal(summaries[0]!.count, 60 - audited);
    B = await startCellIn(NS.b, dirs.b, API.b);
    adminB = await signIn(B.url);
    await waitFor(
      'B back: peer-sync listening',
      async () => (await adminB.get('/api/status')).body?.subsystems?.cells?.state === 'ok',
      20_000,
      250,
    );
  });

  it('unlinking removes the tunnel and the synced peers on both sides', async () => {
    const res = await adminA.delete('/api/cells/beta');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.notified, true);
    assert.deepEqual((await adminA.get('/api/cells')).body.cells, []);
    await waitFor('B unlinked', async () => (await adminB.get('/api/cells')).body.cells.length === 0, 5_000);
    assert.equal((await adminB.get('/api/cells/alpha/peers')).status, 404);
    const keyB = withCellDb(dirs.a, (db) => db.prepare('select count(*) n from cell_links').get().n as number);
    assert.equal(keyB, 0);
    await waitFor('no site-to-site peer on A', async () => !(await wgPeers(NS.a, IFACE.a)).includes(linkedKeyOfB));
    await waitFor('no site-to-site peer on B', async () => (await wgPeers(NS.b, IFACE.b)).length === 0);
    assert.equal((await inNs(NS.a, IP!, 'route', 'show', SUBNET.b)).trim(), '');
    assert.equal(
      withCellDb(dirs.b, (db) => db.prepare('select count(*) n from cell_remote_peers').get().n as number),
      0,
    );
    // the firewall chain and its jumps are gone on both sides, and so is B's route to A
    for (const ns of [NS.a, NS.b]) {
      await waitFor(
        `PIC-CELLS gone in ${ns}`,
        async () => {
          const all = await inNs(ns, 'iptables', '-S');
          return !all.includes('PIC-CELLS');
        },
        5_000,
      );
    }
    assert.equal((await inNs(NS.b, IP!, 'route', 'show', SUBNET.a)).trim(), '');
  });

  it('one step: B delivers its response to A itself; linked on both sides with the same proof', async () => {
    const listening = async () => /:51820\b/.test(await inNs(NS.a, 'ss', '-ltn'));
    assert.equal(await listening(), false, 'no link listener without an open one-step invite');
    const invite = await adminA.post('/api/cells/invites', { one_step: true });
    assert.equal(invite.status, 201, invite.text);
    await waitFor("A's link listener open", listening);
    await waitFor('status: link listener open', async () => {
      return (await adminA.get('/api/status')).body.subsystems.cells.link_listener === `0.0.0.0:${WG_PORT}`;
    });
    const accepted = await adminB.post('/api/cells/accept', { code: invite.body.code });
    assert.equal(accepted.status, 201, accepted.text);
    assert.equal(accepted.body.delivered_to, `http://${UNDER.a}:${WG_PORT}/api/cells/link/complete`);
    // nobody enters anything on A
    await waitFor('B linked on A', async () =>
      (await adminA.get('/api/cells')).body.cells.some((c: { name: string }) => c.name === 'beta'),
    );
    await waitFor("A's link listener closed (the invite is used)", async () => !(await listening()));
    // (the status summary may be up to a second old)
    await waitFor('status: link listener null', async () => {
      return (await adminA.get('/api/status')).body.subsystems.cells.link_listener === null;
    });
    const completed = withCellDb(
      dirs.a,
      (db) =>
        db
          .prepare(
            "select actor, ip, details from audit_log where action = 'cells.complete' and result = 'ok' order by id",
          )
          .all() as Array<{ actor: string; ip: string; details: string }>,
    ).at(-1)!;
    assert.equal(completed.actor, 'cell:beta');
    assert.equal(completed.ip, UNDER.b);
    assert.match(completed.details, /one_step/);
    // the link works as after two steps: the tunnel, then peer-sync
    await waitFor('handshake', async () => (await adminA.get('/api/cells')).body.cells[0].last_handshake, 15_000, 250);
    assert.equal((await adminA.post('/api/peers', { name: 'tablet' })).status, 201);
    await waitFor('tablet on B', async () => (await remote(adminB, 'alpha'))?.includes('tablet'), 10_000, 50);
  });
});
