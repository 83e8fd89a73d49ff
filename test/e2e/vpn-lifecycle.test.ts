// The VPN's data plane outlives the control plane (issue 10, items 2-4), with real parts: a real
// cell process whose WireGuard interface (wireguard-go) is in the root namespace under a unique
// name, and a peer in a network namespace of its own, joined by a veth pair, configured from the
// text GET /api/peers/<name>/config returned.
//
// - The peer reaches the API through the tunnel (the cell's listener on its WireGuard address).
// - The cell is stopped (SIGTERM) and started again while the peer pings it every 200 ms: no
//   ping is lost, the interface and its wireguard-go are the same ones, and the new cell adopts them.
// - A second cell on another data dir, configured with the same interface name, refuses to start
//   while the first one runs, and leaves the interface alone (VPN down, loudly) while it is stopped.
// - `npm run vpn -- down` (the cell's `vpn down`) refuses while the cell runs, and takes the
//   interface down once it is stopped.
//
// Addresses: a random 10.24x.y.0/30 on the veth and a random 10.23x.y.0/24 in the tunnel, used
// only by this test's interface and namespace. Needs root, ip, wg, wireguard-go, ping, /dev/net/tun.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CELL_ARGS,
  exitedWithOutput,
  runCellExpectingFailure,
  startCellProcess,
  type CellProcess,
} from '../support/cell-process.js';
import type { ApiClient } from '../support/client.js';
import { type ParsedWgQuickConfig, loadWgConfig, loadWgTesting, sleep, startPeersCell } from './peers-helpers.js';

const execFileP = promisify(execFile);
const testing = await loadWgTesting();
const skip =
  testing.wireguardTestSkipReason() ??
  (existsSync('/usr/bin/ping') || existsSync('/bin/ping') ? undefined : "'ping' is missing");
if (skip) process.stderr.write(`[vpn-lifecycle] SKIPPING: ${skip}\n`);

const hex = randomBytes(3).toString('hex');
const CLIENT_NS = `pic-t-vl-${hex}`;
const VETH_ROOT = `pvl${hex}a`;
const VETH_CLIENT = `pvl${hex}b`;
const CELL_IF = `picl${hex}`;
const CLIENT_IF = `picm${hex}`;
const UNDERLAY = `10.${240 + randomInt(10)}.${randomInt(256)}`;
const TUNNEL = `10.${230 + randomInt(10)}.${randomInt(256)}`;
const CELL_TUNNEL_ADDRESS = `${TUNNEL}.1`;
const WG_PORT = 40000 + randomInt(20000);
const NETWORK = { wireguard_port: WG_PORT, subnet: `${TUNNEL}.0/24`, endpoint: `${UNDERLAY}.1:${WG_PORT}` };
const WG_YAML = ['wireguard:', '  mode: userspace', `  interface: ${CELL_IF}`, ''].join('\n');
const WG_ENV = { PIC_WIREGUARD_MODE: 'userspace' };

const ip = (...args: string[]) => testing.run('ip', args);
const inClient = (command: string, ...args: string[]) => testing.runIn(CLIENT_NS, command, args);
const nodeInClient = (script: string) =>
  testing.run('ip', ['netns', 'exec', CLIENT_NS, process.execPath, '-e', script]);

/** The cell's `vpn down` (what `npm run vpn -- down` runs), for a data dir. */
async function vpnDown(dataDir: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [...CELL_ARGS, 'vpn', 'down'], {
      env: { ...process.env, PIC_DATA_DIR: dataDir },
      timeout: 30_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Running, and not a zombie (this machine's init does not reap orphans such as an ended wireguard-go). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

/** Pings the cell through the tunnel every 200 ms until stopped; which sequence numbers answered. */
function startPinging(): { stop: () => Promise<{ answered: number[]; lost: number[]; output: string }> } {
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', CLIENT_NS, 'ping', '-n', '-O', '-i', '0.2', '-W', '1', CELL_TUNNEL_ADDRESS],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = exitedWithOutput(child);
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      const answered = [...output.matchAll(/bytes from .* icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
      const last = Math.max(0, ...answered);
      // every echo up to the last answered one: a packet still in flight when ping stopped is not a loss
      const lost = Array.from({ length: last }, (_, i) => i + 1).filter((seq) => !answered.includes(seq));
      return { answered, lost, output };
    },
  };
}

describe('the VPN outlives the cell: adopt on start, one owner, reachable over the tunnel', () => {
  let cell: CellProcess | undefined;
  let admin: ApiClient;
  let client: ChildProcess | undefined;
  let dataDir = '';
  const others: CellProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'pic-vpn-life-'));
  const otherDirs: string[] = [];

  const ifindex = async () => /^(\d+):/.exec(await ip('-o', 'link', 'show', 'dev', CELL_IF))?.[1];
  const ownerRecord = () =>
    JSON.parse(readFileSync(join(dataDir, 'wireguard-owner.json'), 'utf8')) as Record<string, any>;
  const reaches = async () => {
    try {
      await inClient('ping', '-c', '1', '-W', '1', '-n', '-q', CELL_TUNNEL_ADDRESS);
      return true;
    } catch {
      return false;
    }
  };
  /** GET <path> from inside the peer's namespace, through the tunnel. */
  const fetchInClient = async (url: string) =>
    JSON.parse(await nodeInClient(`fetch(${JSON.stringify(url)}).then(r=>r.text()).then(t=>process.stdout.write(t))`));

  before(async () => {
    if (skip) return;
    await ip('netns', 'add', CLIENT_NS);
    await ip('link', 'add', VETH_ROOT, 'type', 'veth', 'peer', 'name', VETH_CLIENT);
    await ip('link', 'set', VETH_CLIENT, 'netns', CLIENT_NS);
    await ip('address', 'add', `${UNDERLAY}.1/30`, 'dev', VETH_ROOT);
    await ip('-n', CLIENT_NS, 'address', 'add', `${UNDERLAY}.2/30`, 'dev', VETH_CLIENT);
    await ip('link', 'set', 'dev', VETH_ROOT, 'up');
    await ip('-n', CLIENT_NS, 'link', 'set', 'dev', VETH_CLIENT, 'up');
    await ip('-n', CLIENT_NS, 'link', 'set', 'dev', 'lo', 'up');
    ({ cell, admin } = await startPeersCell({ network: NETWORK, extraYaml: WG_YAML, env: WG_ENV }));
    dataDir = cell.dataDir;
  });

  after(async () => {
    if (skip) return;
    const problems: string[] = [];
    for (const c of [cell, ...others]) await c?.stop();
    if (client) await testing.stopChild(client);
    if (dataDir) {
      const down = await vpnDown(dataDir);
      if (down.code !== 0) problems.push(`vpn down: ${down.out}`);
    }
    if (
      await ip('link', 'show', 'dev', CELL_IF).then(
        () => true,
        () => false,
      )
    ) {
      problems.push(`${CELL_IF} was still up; deleted`);
      await ip('link', 'delete', 'dev', CELL_IF).catch(() => undefined);
    }
    for (const pid of (await ip('netns', 'pids', CLIENT_NS).catch(() => '')).split('\n').filter(Boolean).map(Number)) {
      problems.push(`process ${pid} was still running in ${CLIENT_NS}; killed`);
      process.kill(pid, 'SIGKILL');
    }
    await ip('netns', 'del', CLIENT_NS).catch((err) => problems.push(String(err)));
    await ip('link', 'del', VETH_ROOT).catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    for (const d of [tmp, ...otherDirs]) rmSync(d, { recursive: true, force: true });
    assert.deepEqual(problems, [], 'clean-up went wrong');
  });

  it('a peer reaches the API through the tunnel on the WireGuard address; the main listener stays local', async (t) => {
    if (skip) return t.skip(skip);
    const status = (await admin.get('/api/status')).body;
    assert.equal(status.vpn.state, 'up', JSON.stringify(status));
    assert.equal(status.vpn.interface, CELL_IF);
    assert.equal(status.vpn.adopted, false, 'made by this start');
    assert.match(cell!.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const port = new URL(cell!.url).port;
    assert.equal(status.subsystems.wireguard.api_url, `http://${CELL_TUNNEL_ADDRESS}:${port}`);

    const created = await admin.post('/api/peers', { name: 'laptop' });
    assert.equal(created.status, 201, created.text);
    const text = (await admin.get('/api/peers/laptop/config')).text;
    const wg = await loadWgConfig();
    const parsed: ParsedWgQuickConfig = wg.parseWgQuickConfig(text);
    client = (await testing.startWireGuardGoIn(CLIENT_NS, CLIENT_IF)).child;
    const conf = join(tmp, 'client.conf');
    writeFileSync(conf, wg.renderWgConfig(wg.toWgConfig(parsed)), { mode: 0o600 });
    await inClient('wg', 'setconf', CLIENT_IF, conf);
    for (const address of parsed.interface.addresses)
      await ip('-n', CLIENT_NS, 'address', 'add', address, 'dev', CLIENT_IF);
    await ip('-n', CLIENT_NS, 'link', 'set', 'dev', CLIENT_IF, 'up');
    for (const route of parsed.peers[0]!.allowedIps) await ip('-n', CLIENT_NS, 'route', 'add', route, 'dev', CLIENT_IF);
    const deadline = Date.now() + 20_000;
    while (!(await reaches())) {
      assert.ok(Date.now() < deadline, `no ping through the tunnel\n${cell!.output()}`);
      await sleep(250);
    }
    const health = await fetchInClient(`http://${CELL_TUNNEL_ADDRESS}:${port}/health`);
    assert.equal(health.ok, true, JSON.stringify(health));
    assert.equal(health.setup_complete, true);
    // the peer has no other way to the cell: its namespace has no route to 127.0.0.1 of ours
    await assert.rejects(nodeInClient(`fetch(${JSON.stringify(`${cell!.url}/health`)}).then(r=>r.text())`));
  });

  it('stopping and starting the cell loses no ping: the new cell adopts the interface and wireguard-go', async (t) => {
    if (skip) return t.skip(skip);
    const index = await ifindex();
    const goPid = ownerRecord().wireguard_go_pid as number;
    assert.ok(goPid > 0 && alive(goPid), `wireguard-go's pid is recorded: ${JSON.stringify(ownerRecord())}`);
    const pinging = startPinging();
    await sleep(1_000);
    assert.equal(await cell!.stop(), 0, cell!.output());
    assert.match(cell!.output(), /wireguard interface left up for the next start/);
    assert.equal(await ifindex(), index, 'the interface is still there with the cell stopped');
    assert.ok(alive(goPid), 'and its wireguard-go runs on');
    await sleep(1_500); // the tunnel carries on with no cell at all

    cell = await startCellProcess({ dataDir, env: WG_ENV, timeoutMs: 30_000 });
    admin = admin.clone(cell.url); // sessions survive restarts
    let status = (await admin.get('/api/status')).body;
    for (let i = 0; i < 300 && status.vpn.state !== 'up'; i++) {
      await sleep(100);
      status = (await admin.get('/api/status')).body;
    }
    assert.equal(status.vpn.state, 'up', JSON.stringify(status.vpn));
    assert.equal(status.vpn.adopted, true, 'the running interface was adopted, not made again');
    assert.equal(status.subsystems.wireguard.mode, 'userspace', 'the mode the owner record keeps');
    assert.match(cell.output(), /"msg":"wireguard interface adopted"/);
    await sleep(1_500); // pings across the converge and after it
    const { answered, lost, output } = await pinging.stop();
    t.diagnostic(`${answered.length} pings answered across the restart, ${lost.length} lost`);
    assert.ok(answered.length >= 15, `ping ran across the restart:\n${output}`);
    assert.deepEqual(lost, [], `pings lost across the restart:\n${output}`);
    assert.equal(await ifindex(), index, 'the same interface');
    assert.equal(ownerRecord().wireguard_go_pid, goPid, 'the same wireguard-go, recorded again by the new cell');
    assert.equal(ownerRecord().cell_pid, cell.child.pid);

    // the listener on the tunnel address came back with the adopted interface
    const health = await fetchInClient(`http://${CELL_TUNNEL_ADDRESS}:${new URL(cell.url).port}/health`);
    assert.equal(health.ok, true);
    // and `vpn down` refuses while the cell runs
    const refused = await vpnDown(dataDir);
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /another cell is already running on the data dir/);
    assert.equal(await ifindex(), index);
  });

  it('a second cell with the same interface name refuses it, while its owner runs or is stopped', async (t) => {
    if (skip) return t.skip(skip);
    const index = await ifindex();
    const otherDir = mkdtempSync(join(tmpdir(), 'pic-vpn-other-'));
    otherDirs.push(otherDir);
    writeFileSync(join(otherDir, 'cell.yaml'), WG_YAML);
    const refused = await runCellExpectingFailure({
      dataDir: otherDir,
      env: { ...WG_ENV, PIC_HOST: '127.0.0.1' },
      timeoutMs: 30_000,
    });
    assert.equal(refused.code, 1, refused.output);
    assert.match(
      refused.output,
      new RegExp(
        `the WireGuard interface ${CELL_IF} belongs to the cell running on the data dir ` +
          `.*${cell!.dataDir.split('/').pop()} \\(pid ${cell!.child.pid}\\)`,
      ),
    );
    assert.ok(await reaches(), 'the tunnel is untouched');

    // With the owner stopped, its interface carries on; another cell still leaves it alone, and says so loudly.
    assert.equal(await cell!.stop(), 0);
    const other = await startPeersCell({ dataDir: otherDir, cellYaml: WG_YAML, network: NETWORK, env: WG_ENV });
    others.push(other.cell);
    const status = (await other.admin.get('/api/status')).body;
    assert.equal(status.status, 'down', JSON.stringify(status));
    assert.equal(status.vpn.state, 'down');
    assert.match(status.vpn.reason, /belongs to the data dir .*, whose cell is stopped .*npm run vpn -- down/);
    await other.cell.stop();
    assert.equal(await ifindex(), index, 'the same interface, never taken over');
    assert.ok(await reaches(), 'still carrying the tunnel with no cell running at all');
  });

  it('npm run vpn -- down takes the interface and its wireguard-go down, and clears the owner records', async (t) => {
    if (skip) return t.skip(skip);
    const record = ownerRecord();
    const marker = `/run/pic/wireguard/${CELL_IF}.json`;
    assert.ok(existsSync(marker));
    const down = await vpnDown(dataDir);
    assert.equal(down.code, 0, down.out);
    assert.match(down.out, new RegExp(`pic vpn: took ${CELL_IF} down`));
    await assert.rejects(ip('link', 'show', 'dev', CELL_IF), 'the interface is gone');
    assert.ok(!alive(record.wireguard_go_pid), 'wireguard-go ended');
    assert.ok(!existsSync(marker) && !existsSync(join(dataDir, 'wireguard-owner.json')), 'no owner records left');
    assert.equal(await reaches(), false);
    const again = await vpnDown(dataDir);
    assert.equal(again.code, 0);
    assert.match(again.out, /nothing to take down/);
  });
});
