// Peers reach each other through the cell while a plain Docker engine runs beside it (issue 10,
// item 6). A plain `dockerd` (its iptables management on, the default) sets the FORWARD policy to
// DROP; the cell adds the one ACCEPT rule it needs for its interface (firewall.ts).
//
// Real parts: a dockerd started in the cell's network namespace (with nsenter, which keeps the
// host's cgroup mounts that `ip netns exec` would hide), a real cell process whose wireguard-go
// interface lives in that namespace, and two peers in namespaces of their own, each joined to the
// cell's by a veth pair and configured from GET /api/peers/<name>/config. Peer A pings peer B's
// tunnel address: in on the cell's interface, forwarded, out on it again.
//
// Addresses exist only inside this test's namespaces. Needs root, ip, wg, wireguard-go, ping,
// iptables, nsenter, dockerd and /dev/net/tun; skips loudly naming what is missing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CELL_ARGS, startCellProcess, type CellProcess } from '../support/cell-process.js';
import type { ApiClient } from '../support/client.js';
import { loadWgConfig, loadWgTesting, sleep, startPeersCell } from './peers-helpers.js';

const execFileP = promisify(execFile);
const testing = await loadWgTesting();
const which = (name: string) =>
  ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
const DOCKERD = which('dockerd');
const NSENTER = which('nsenter');
const IPTABLES = which('iptables');
const skip =
  testing.wireguardTestSkipReason() ??
  (!DOCKERD ? 'dockerd is not installed (Debian package docker.io)' : undefined) ??
  (!NSENTER ? 'nsenter is not installed (util-linux)' : undefined) ??
  (!IPTABLES ? 'iptables is not installed' : undefined) ??
  (!which('ping') ? "'ping' is missing" : undefined);
if (skip) process.stderr.write(`[vpn-forwarding] SKIPPING: ${skip}\n`);

const hex = randomBytes(3).toString('hex');
const CELL_NS = `pic-t-fc-${hex}`;
const NS_A = `pic-t-fa-${hex}`;
const NS_B = `pic-t-fb-${hex}`;
const CELL_IF = `picf${hex}`;
const WG_PORT = 51820;
const NETWORK = { wireguard_port: WG_PORT, subnet: '10.9.0.0/24', endpoint: `10.251.1.1:${WG_PORT}` };
const WG_YAML = ['wireguard:', '  mode: userspace', `  interface: ${CELL_IF}`, `  netns: ${CELL_NS}`, ''].join('\n');
const WG_ENV = { PIC_WIREGUARD_MODE: 'userspace' };
const OUR_RULE = `-A FORWARD -i ${CELL_IF} -o ${CELL_IF} -j ACCEPT`;

const ip = (...args: string[]) => testing.run('ip', args);
const forwardRules = () => testing.runIn(CELL_NS, 'iptables', ['-w', '-S', 'FORWARD']);

describe('peers reach each other through the cell with a plain Docker engine running (FORWARD policy DROP)', () => {
  let cell: CellProcess | undefined;
  let admin: ApiClient;
  let dockerd: ChildProcess | undefined;
  const clients: ChildProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'pic-vpn-fwd-'));
  let dataDir = '';
  let addressB = '';

  const pingB = async (from: string) => {
    try {
      await testing.runIn(from, 'ping', ['-c', '1', '-W', '1', '-n', '-q', addressB]);
      return true;
    } catch {
      return false;
    }
  };
  const pingBWithin = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await pingB(NS_A)) return true;
      await sleep(250);
    }
    return false;
  };

  before(async () => {
    if (skip) return;
    for (const ns of [CELL_NS, NS_A, NS_B]) {
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const [ns, i] of [
      [NS_A, 1],
      [NS_B, 2],
    ] as const) {
      const [c, p] = [`pfc${hex}${i}`, `pfp${hex}${i}`];
      await ip('link', 'add', c, 'netns', CELL_NS, 'type', 'veth', 'peer', 'name', p, 'netns', ns);
      await ip('-n', CELL_NS, 'address', 'add', `10.251.${i}.1/30`, 'dev', c);
      await ip('-n', ns, 'address', 'add', `10.251.${i}.2/30`, 'dev', p);
      await ip('-n', CELL_NS, 'link', 'set', c, 'up');
      await ip('-n', ns, 'link', 'set', p, 'up');
    }
    // A plain dockerd, as an admin starts one: iptables management on (the default).
    const log = openSync(join(tmp, 'dockerd.log'), 'w');
    dockerd = spawn(
      NSENTER!,
      [
        `--net=/run/netns/${CELL_NS}`,
        DOCKERD!,
        `--host=unix://${tmp}/docker.sock`,
        `--data-root=${tmp}/docker-data`,
        `--exec-root=${tmp}/docker-exec`,
        `--pidfile=${tmp}/docker.pid`,
        '--shutdown-timeout=2',
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const deadline = Date.now() + 60_000;
    while (!/^-P FORWARD DROP$/m.test(await forwardRules())) {
      assert.ok(
        Date.now() < deadline && dockerd.exitCode === null,
        `dockerd did not set up its firewall:\n${readFileSync(join(tmp, 'dockerd.log'), 'utf8').slice(-2000)}`,
      );
      await sleep(250);
    }
    ({ cell, admin } = await startPeersCell({ network: NETWORK, extraYaml: WG_YAML, env: WG_ENV }));
    dataDir = cell.dataDir;
  });

  after(async () => {
    if (skip) return;
    await cell?.stop();
    if (dataDir) {
      await execFileP(process.execPath, [...CELL_ARGS, 'vpn', 'down'], {
        env: { ...process.env, PIC_DATA_DIR: dataDir },
      }).catch(() => undefined);
    }
    for (const c of clients) await testing.stopChild(c);
    if (dockerd) await testing.stopChild(dockerd, 10_000);
    for (const ns of [CELL_NS, NS_A, NS_B]) {
      for (const pid of (await ip('netns', 'pids', ns).catch(() => '')).split('\n').filter(Boolean).map(Number))
        process.kill(pid, 'SIGKILL');
      await ip('netns', 'del', ns).catch(() => undefined);
    }
    for (const d of [tmp, dataDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("the cell adds its ACCEPT rule beside Docker's DROP policy, and peer A pings peer B through it", async (t) => {
    if (skip) return t.skip(skip);
    const wg = await loadWgConfig();
    for (const [name, ns, endpoint] of [
      ['a', NS_A, '10.251.1.1'],
      ['b', NS_B, '10.251.2.1'],
    ] as const) {
      const created = await admin.post('/api/peers', { name });
      assert.equal(created.status, 201, created.text);
      const parsed = wg.parseWgQuickConfig((await admin.get(`/api/peers/${name}/config`)).text);
      parsed.peers[0]!.endpoint = `${endpoint}:${WG_PORT}`; // each peer reaches the cell over its own veth
      if (name === 'b') addressB = parsed.interface.addresses[0]!.split('/')[0]!;
      const clientIf = `picq${hex}${name}`;
      clients.push((await testing.startWireGuardGoIn(ns, clientIf)).child);
      const conf = join(tmp, `${name}.conf`);
      writeFileSync(conf, wg.renderWgConfig(wg.toWgConfig(parsed)), { mode: 0o600 });
      await testing.runIn(ns, 'wg', ['setconf', clientIf, conf]);
      for (const a of parsed.interface.addresses) await ip('-n', ns, 'address', 'add', a, 'dev', clientIf);
      await ip('-n', ns, 'link', 'set', 'dev', clientIf, 'up');
      for (const route of parsed.peers[0]!.allowedIps) await ip('-n', ns, 'route', 'add', route, 'dev', clientIf);
    }
    // B speaks first, so that the cell knows B's endpoint before A's packets for B arrive
    await testing.runIn(NS_B, 'ping', ['-c', '1', '-W', '2', '-n', '-q', '10.9.0.1']).catch(() => undefined);
    const rules = await forwardRules();
    assert.match(rules, /^-P FORWARD DROP$/m, 'Docker set the policy');
    assert.ok(rules.split('\n').includes(OUR_RULE), `the cell's rule:\n${rules}`);
    assert.ok(
      await pingBWithin(20_000),
      `A could not ping B (${addressB}) through the cell\n${rules}\n${cell!.output()}`,
    );
    const status = (await admin.get('/api/status')).body;
    assert.deepEqual(status.subsystems.wireguard.forwarding, { state: 'on', reason: null });

    // Without the rule, Docker's policy drops it: the rule is what makes it work.
    await testing.runIn(CELL_NS, 'iptables', ['-w', '-D', 'FORWARD', '-i', CELL_IF, '-o', CELL_IF, '-j', 'ACCEPT']);
    for (let i = 0; i < 3; i++) assert.equal(await pingB(NS_A), false, `ping ${i + 1} must fail without the rule`);

    // A restart of the cell adopts the interface and puts the rule back, once.
    assert.equal(await cell!.stop(), 0);
    cell = await startCellProcess({ dataDir, env: WG_ENV, timeoutMs: 30_000 });
    admin = admin.clone(cell.url);
    const back = Date.now() + 20_000;
    while (!(await forwardRules()).includes(OUR_RULE)) {
      assert.ok(Date.now() < back, `the rule did not come back:\n${cell.output()}`);
      await sleep(200);
    }
    assert.ok(await pingBWithin(10_000), 'A pings B again');
    assert.equal((await forwardRules()).split('\n').filter((l) => l === OUR_RULE).length, 1, 'added once (idempotent)');

    // the explicit end of the VPN takes the rule away with the interface
    assert.equal(await cell.stop(), 0);
    const down = await execFileP(process.execPath, [...CELL_ARGS, 'vpn', 'down'], {
      env: { ...process.env, PIC_DATA_DIR: dataDir },
    });
    assert.match(down.stdout, /took .* down/);
    assert.ok(!(await forwardRules()).includes(OUR_RULE), 'the rule is gone with the VPN');
  });
});
