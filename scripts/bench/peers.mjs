// Bench section for issues 4 and 16 (peers and WireGuard): time to add 1,000 peers through the API
// (sequentially and from 8 concurrent clients), GET /api/peers latency with 10,000 peers (p50/p99,
// a page of 100 and a full page of 1,000), the cell's start-up with 10,000 peers, and the time to
// apply a config of 10,000 peers to the live interface. Issue 16's goals, all with 10,000 peers
// present: one peer's PUT p50 < 20 ms and p99 < 50 ms, adding one peer p50 < 30 ms, 1,000 peers
// through POST /api/peers/batch < 5 s, and the interface converged < 3 s after the cell listens. The apply goal is measured through the
// wireguard module's own bench (scripts/bench/wireguard.mjs `benchApply`, WireGuardInterface in a
// throwaway namespace) when that file exists; the PUT round trip through the cell is reported beside it.
//
// It runs its own cell (not `shared.cell`): a subnet big enough for 10,000 peers (10.96.0.0/16),
// the API limiter raised, and — where this machine can (root, wg, wireguard-go, /dev/net/tun,
// `ip netns`) — a real WireGuard interface (wireguard-go) inside a throwaway network namespace, so
// "apply" really changes the live interface and every list request carries the real `wg show dump`. Where it
// cannot, WireGuard is off and "apply" is only rendering and writing the config file (said in a note).
//
// The first 2,000 peers go through the API (that is what is timed). The other 8,000 are written
// straight into the stopped cell's SQLite file — peers and users rows as the cell writes them, their
// private keys and PSKs through the cell's own Vault class (packages/cell/dist/features/vault) — because
// 8,000 more API adds would take minutes (two vault encryptions each) for no new figure.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { cellArgs, median, sleep, spawnNode, tempDir, waitForOutput } from './lib.mjs';
// The one PATH lookup (built before any bench runs).
import { findExecutable } from '../../packages/runtime/dist/executable.js';

export const name = 'peers';
export const title =
  'Peers and WireGuard (issues 4, 16): adding peers via the API, GET /api/peers, PUT, batch and start-up with 10,000 peers';

const TOTAL = 10_000;
const API_ADDS = 1_000;
const CONCURRENCY = 8;
const SUBNET = '10.96.0.0/16';
const WG_PORT = 51820;
const ADMIN = { username: 'admin', password: 'bench-password-0123456789' };
const LISTENING = /PIC cell listening on (http:\/\/\S+)/;
const API_PER_MINUTE = 10_000_000;
/** PUTs of one peer timed with 10,000 present (issue 16), adds one at a time, and one batch. */
const PUT_SAMPLES = 200;
const ADD_ONE_SAMPLES = 100;
const BATCH_ADDS = 1_000;
const execFileP = promisify(execFile);

async function exec(file, args, timeout = 120_000) {
  try {
    return (await execFileP(file, args, { timeout, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (err) {
    throw new Error(`${file} ${args.slice(0, 4).join(' ')}…: ${err.stderr?.trim() || err.message}`);
  }
}

/** Why a real interface cannot be used here, or undefined. */
function wireguardWhyNot() {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root';
  for (const cmd of ['ip', 'wg', 'wireguard-go']) if (!findExecutable(cmd)) return `'${cmd}' is not installed`;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  return undefined;
}

/** A keep-alive JSON client with a cookie and the CSRF header. */
function client(baseUrl) {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const state = { cookie: undefined, csrf: undefined };
  const call = (method, path, json) =>
    new Promise((resolve, reject) => {
      const body = json === undefined ? undefined : JSON.stringify(json);
      const headers = {};
      if (state.cookie) headers.cookie = state.cookie;
      if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
      if (body !== undefined)
        Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      const started = performance.now();
      const req = request(new URL(path, baseUrl), { method, agent, headers, timeout: 120_000 }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString('utf8');
          const line = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('pic.sid='));
          if (line) state.cookie = line.split(';')[0];
          let parsed;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode, body: parsed, ms, bytes: text.length });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  const must = async (method, path, json, want = 200) => {
    const res = await call(method, path, json);
    if (res.status !== want)
      throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res;
  };
  return { state, call, must, close: () => agent.destroy() };
}

const percentile = (values, p) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round2 = (n) => Math.round(n * 100) / 100;

/**
 * @param {{ root: string, cleanup: import('./lib.mjs').Cleanup, opts: Record<string, number>,
 *           log: (msg: string) => void, shared: Record<string, unknown> }} ctx
 */
export async function run(ctx) {
  const { root, cleanup, log } = ctx;
  const cellCmd = cellArgs(root); // as npm start runs it: node flags and the bundle
  const dist = (p) => import(pathToFileURL(join(root, 'packages', 'cell', 'dist', p)).href);
  const notes = [];
  const json = {};

  // --- 0. apply through the wireguard module (another helper's bench), before our cell loads the CPU
  let moduleApply;
  const wireguardBench = join(root, 'scripts', 'bench', 'wireguard.mjs');
  if (existsSync(wireguardBench)) {
    const { benchApply } = await import(pathToFileURL(wireguardBench).href);
    if (typeof benchApply === 'function') {
      log(`peers: applying ${TOTAL} peers through the wireguard module (scripts/bench/wireguard.mjs benchApply)`);
      moduleApply = await benchApply(root, { peers: TOTAL, cleanup, log });
    }
  }
  json.module_apply = moduleApply ?? null;

  // --- a namespace for the interface, when the machine allows one
  const hex = randomBytes(3).toString('hex');
  const why = wireguardWhyNot();
  let netns;
  let iface = 'pic0';
  if (!why) {
    netns = `pic-bench-${hex}`;
    iface = `picb${hex}`;
    const ip = findExecutable('ip');
    await exec(ip, ['netns', 'add', netns]);
    cleanup.add(async () => {
      // anything left in our own namespace (the cell's wireguard-go) was started by this bench
      const pids = (await exec(ip, ['netns', 'pids', netns]).catch(() => '')).split('\n').filter(Boolean).map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exec(ip, ['netns', 'del', netns]);
    });
    await exec(ip, ['-n', netns, 'link', 'set', 'lo', 'up']);
    notes.push(
      `WireGuard: a real interface (${iface}, wireguard-go) in the throwaway namespace ${netns}; "apply" really changes it (wg show dump, then wg set/addconf for the peers that differ), and GET /api/peers reads a wg show dump at most a few seconds old (refreshed behind the request)`,
    );
  } else {
    notes.push(
      `WireGuard: OFF (${why}), so "apply" below is rendering and writing the config file only, and lists carry no live counters`,
    );
  }
  json.wireguard = why ? { running: false, reason: why } : { running: true, netns, interface: iface };

  const data = tempDir(cleanup, 'pic-bench-peers-');
  const yaml = [
    'rate_limit:',
    `  api_per_minute: ${API_PER_MINUTE}`,
    'wireguard:',
    `  mode: ${why ? 'off' : 'userspace'}`,
    `  interface: ${iface}`,
    ...(netns ? [`  netns: ${netns}`] : []),
    '',
  ].join('\n');
  writeFileSync(join(data.dir, 'cell.yaml'), yaml);
  const env = {
    PIC_PORT: '0',
    PIC_HOST: '127.0.0.1',
    PIC_DATA_DIR: data.dir,
    PIC_WIREGUARD_MODE: why ? 'off' : 'userspace',
  };

  const startCell = async () => {
    const t0 = performance.now();
    const cell = spawnNode(cleanup, cellCmd, { env });
    const [, url] = await waitForOutput(cell, LISTENING, 180_000);
    return { cell, url, listeningMs: performance.now() - t0 };
  };

  // --- 1. a fresh cell through the wizard
  let { cell, url } = await startCell();
  let api = client(url);
  for (const body of [
    ADMIN,
    { cell_name: 'bench', domain: 'bench.example.org' },
    { wireguard_port: WG_PORT, subnet: SUBNET, endpoint: `vpn.bench.example.org:${WG_PORT}` },
    {},
  ]) {
    await api.must('POST', '/api/setup/step', body);
  }
  await api.must('POST', '/api/setup/complete', {});
  api.state.csrf = (await api.must('GET', '/api/auth/csrf-token')).body.token;
  const wgStatus = (await api.must('GET', '/api/wireguard/status')).body;
  if (!why && !wgStatus.running) throw new Error(`the bench cell's interface did not come up: ${wgStatus.reason}`);

  // what one scrypt hash costs here, for reading the add figures
  const { hashPassword } = await dist('lib/password.js');
  let t = performance.now();
  for (let i = 0; i < 10; i++) await hashPassword('bench peer password');
  const scryptMs = (performance.now() - t) / 10;

  // --- 2. 1,000 peers one after another
  log(`peers: adding ${API_ADDS} peers through POST /api/peers, one at a time`);
  const seqLatencies = [];
  t = performance.now();
  for (let i = 0; i < API_ADDS; i++) {
    const res = await api.must(
      'POST',
      '/api/peers',
      { name: `seq-${String(i).padStart(5, '0')}`, group: i % 2 ? 'odd' : 'even', tags: [`t${i % 10}`] },
      201,
    );
    seqLatencies.push(res.ms);
  }
  const seqTotalMs = performance.now() - t;

  // --- 3. 1,000 more from 8 concurrent clients
  log(`peers: adding ${API_ADDS} more from ${CONCURRENCY} concurrent clients`);
  let next = 0;
  const parLatencies = [];
  t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < API_ADDS; i = next++) {
        const res = await api.must('POST', '/api/peers', { name: `par-${String(i).padStart(5, '0')}` }, 201);
        parLatencies.push(res.ms);
      }
    }),
  );
  const parTotalMs = performance.now() - t;
  api.close();

  // --- 4. the rest straight into SQLite while the cell is stopped, secrets through the cell's Vault
  await cell.stop();
  const bulk = TOTAL - 2 * API_ADDS;
  log(
    `peers: writing ${bulk} more peers into the stopped cell's database (rows + vault secrets via the cell's Vault class)`,
  );
  t = performance.now();
  await bulkInsert({ dist, dataDir: data.dir, count: bulk, passwordHash: await hashPassword('bulk peer password') });
  const bulkMs = performance.now() - t;

  // --- 5. the cell again, now with 10,000 peers: start-up brings the interface up with all of them.
  // The first start after the bulk write reads 8,000 PSKs one by one (they were written behind the
  // cell's back, so its PSK bundle lacks them) and then saves the bundle; the second start is the
  // everyday one, a cell that made its peers itself: one bundle secret to decrypt.
  const restart = async (label) => {
    log(`peers: restarting the cell with 10,000 peers (${label})`);
    const started = await startCell();
    const c = client(started.url);
    await c.must('POST', '/api/auth/login', ADMIN);
    c.state.csrf = (await c.must('GET', '/api/auth/csrf-token')).body.token;
    // the cell answers while the interface still loads its peers (status reason "starting…"): wait for it
    const t0 = performance.now();
    let s = (await c.must('GET', '/api/wireguard/status')).body;
    while (!s.running && /^starting/.test(s.reason ?? '')) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      s = (await c.must('GET', '/api/wireguard/status')).body;
    }
    const upAfterMs = Math.round(performance.now() - t0);
    if (!why) {
      // converged means the live interface holds every peer: count them with wg itself
      const held = (
        await exec(findExecutable('ip'), ['netns', 'exec', netns, findExecutable('wg'), 'show', iface, 'peers'])
      )
        .split('\n')
        .filter(Boolean).length;
      if (held !== TOTAL) throw new Error(`the interface holds ${held} peers after start-up, expected ${TOTAL}`);
    }
    return { ...started, api: c, status: s, listeningMs: Math.round(started.listeningMs), upAfterMs };
  };
  const cold = await restart('first start after the bulk write: PSKs read one by one');
  json.cold_start_with_10k_ms = cold.listeningMs;
  json.cold_interface_up_after_listening_ms = cold.upAfterMs;
  await sleep(500); // the bundle is written just after start-up
  cold.api.close();
  await cold.cell.stop();
  const warm = await restart('PSKs from the bundle');
  ({ cell, url, api } = warm);
  const status = warm.status;
  json.start_with_10k_ms = warm.listeningMs;
  json.interface_up_after_listening_ms = warm.upAfterMs;
  if (status.peers.length !== TOTAL)
    throw new Error(`expected ${TOTAL} live peers, the status shows ${status.peers.length}`);
  if (!why && !status.running) throw new Error(`the interface is not running after the restart: ${status.reason}`);
  const total = (await api.must('GET', '/api/peers?limit=1')).body.total;
  if (total !== TOTAL) throw new Error(`expected ${TOTAL} peers, GET /api/peers says ${total}`);

  // --- 6. list latency: one client, sequential requests, random pages
  const listLatency = async (limit, count) => {
    const pages = Math.ceil(TOTAL / limit);
    for (let i = 0; i < 10; i++) await api.must('GET', `/api/peers?limit=${limit}&offset=${(i % pages) * limit}`);
    const ms = [];
    for (let i = 0; i < count; i++) {
      const offset = Math.floor(Math.random() * pages) * limit;
      const res = await api.must('GET', `/api/peers?limit=${limit}&offset=${offset}`);
      if (res.body.peers.length !== Math.min(limit, TOTAL - offset))
        throw new Error(`page at ${offset}: ${res.body.peers.length} peers`);
      ms.push(res.ms);
    }
    return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), count };
  };
  log('peers: GET /api/peers latency, pages of 100 and of 1,000');
  const list100 = await listLatency(100, 400);
  const list1000 = await listLatency(1000, 150);
  const filtered = [];
  for (let i = 0; i < 100; i++)
    filtered.push((await api.must('GET', `/api/peers?tag=t${i % 10}&group=odd&limit=100`)).ms);
  const searched = [];
  for (let i = 0; i < 100; i++)
    searched.push((await api.must('GET', `/api/peers?q=${String(i).padStart(3, '0')}&limit=100`)).ms);

  let wgShowMs;
  if (!why) {
    const wg = findExecutable('wg');
    const ip = findExecutable('ip');
    const ms = [];
    for (let i = 0; i < 10; i++) {
      const s = performance.now();
      await exec(ip, ['netns', 'exec', netns, wg, 'show', iface, 'dump']);
      ms.push(performance.now() - s);
    }
    wgShowMs = median(ms);
  }

  // --- 7. one peer's PUT with 10,000 present: enable/disable, allowed IPs, expiry (issue 16)
  log(`peers: ${PUT_SAMPLES} PUTs of one peer (enable, disable, allowed IPs, expiry) with ${TOTAL} present`);
  const future = new Date(Date.now() + 30 * 86_400_000).toISOString();
  const putBodies = [
    { enabled: false },
    { enabled: true },
    { allowed_ips: ['10.96.0.0/16', '192.168.1.0/24'] },
    { expires_at: future },
    { expires_at: null },
    { allowed_ips: ['10.96.0.0/16'] },
  ];
  for (let i = 0; i < 12; i++) await api.must('PUT', '/api/peers/seq-00002', putBodies[i % putBodies.length]); // warm-up
  const putMs = [];
  for (let i = 0; i < PUT_SAMPLES; i++) {
    const name = `seq-${String(i % 50).padStart(5, '0')}`;
    putMs.push((await api.must('PUT', `/api/peers/${name}`, putBodies[Math.floor(i / 50 + i) % putBodies.length])).ms);
  }
  // every peer is enabled again before the interface is checked below
  for (let i = 0; i < 50; i++)
    await api.must('PUT', `/api/peers/seq-${String(i).padStart(5, '0')}`, { enabled: true, expires_at: null });
  const applyMs = [];
  for (let i = 0; i < 10; i++)
    applyMs.push((await api.must('PUT', '/api/peers/seq-00000', { enabled: i % 2 === 1 })).ms);
  const describeMs = [];
  for (let i = 0; i < 20; i++)
    describeMs.push((await api.must('PUT', '/api/peers/seq-00001', { description: `round ${i}` })).ms);

  // --- 8. adding one peer at a time, then 1,000 in one batch, with 10,000 present (issue 16)
  log(`peers: adding ${ADD_ONE_SAMPLES} peers one at a time, then ${BATCH_ADDS} through POST /api/peers/batch`);
  const addOneMs = [];
  for (let i = 0; i < ADD_ONE_SAMPLES; i++) {
    addOneMs.push(
      (await api.must('POST', '/api/peers', { name: `one-${String(i).padStart(5, '0')}`, tags: ['late'] }, 201)).ms,
    );
  }
  const batchBody = {
    action: 'add',
    peers: Array.from({ length: BATCH_ADDS }, (_, i) => ({
      name: `batch-${String(i).padStart(5, '0')}`,
      group: 'batch',
    })),
  };
  const batch = await api.must('POST', '/api/peers/batch', batchBody, 201);
  if (batch.body.peers.length !== BATCH_ADDS) throw new Error(`the batch answered ${batch.body.peers.length} peers`);
  const liveAfterAdds = TOTAL + ADD_ONE_SAMPLES + BATCH_ADDS;
  if (!why) {
    const held = (
      await exec(findExecutable('ip'), ['netns', 'exec', netns, findExecutable('wg'), 'show', iface, 'peers'])
    )
      .split('\n')
      .filter(Boolean).length;
    if (held !== liveAfterAdds)
      throw new Error(`after the adds the interface holds ${held} peers, expected ${liveAfterAdds}`);
  }

  let syncconfMs;
  if (!why) {
    // the cell keeps no config file (keys stay in the vault): take the live one for this measurement only
    const live = await exec(findExecutable('ip'), ['netns', 'exec', netns, findExecutable('wg'), 'showconf', iface]);
    const file = join(data.dir, `bench-${iface}.conf`);
    writeFileSync(file, live, { mode: 0o600 });
    const ms = [];
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      await exec(findExecutable('ip'), ['netns', 'exec', netns, findExecutable('wg'), 'syncconf', iface, file]);
      ms.push(performance.now() - s);
    }
    rmSync(file);
    syncconfMs = median(ms);
  }
  // the interface really holds them
  const after = (await api.must('GET', '/api/wireguard/status')).body;
  api.close();
  await cell.stop();
  await sleep(100);

  const rows = [
    { label: 'scrypt hash of one login password, alone (ms)', value: scryptMs, digits: 1 },
    { label: `add ${API_ADDS} peers via the API, sequential (s)`, value: seqTotalMs / 1000, digits: 1 },
    {
      label: '  per peer (ms); p50 / p99 request',
      text: `${(seqTotalMs / API_ADDS).toFixed(1)}; ${percentile(seqLatencies, 50).toFixed(1)} / ${percentile(seqLatencies, 99).toFixed(1)}`,
    },
    {
      label: `add ${API_ADDS} peers via the API, ${CONCURRENCY} concurrent clients (s)`,
      value: parTotalMs / 1000,
      digits: 1,
    },
    { label: '  per peer (ms, wall time ÷ peers)', value: parTotalMs / API_ADDS, digits: 1 },
    { label: `bulk-write ${bulk} peers into SQLite + vault (s, setup only)`, value: bulkMs / 1000, digits: 1 },
    {
      label: `first start after the bulk write, PSKs one by one: spawn → listening; then → converged (ms)`,
      text: `${json.cold_start_with_10k_ms}; ${json.cold_interface_up_after_listening_ms}`,
    },
    { label: `cell start-up with ${TOTAL} peers, spawn → listening (ms)`, value: json.start_with_10k_ms, digits: 0 },
    {
      label: 'then until the interface is converged with all of them (ms)',
      value: json.interface_up_after_listening_ms,
      digits: 0,
      goal: { cmp: '<', target: 3000 },
    },
    {
      label: '  spawn → interface converged, in all (ms; PSKs from the bundle)',
      value: json.start_with_10k_ms + json.interface_up_after_listening_ms,
      digits: 0,
    },
    { label: `GET /api/peers?limit=100, ${TOTAL} peers: p50 (ms)`, value: list100.p50, digits: 1 },
    {
      label: `GET /api/peers?limit=100, ${TOTAL} peers: p99 (ms)`,
      value: list100.p99,
      digits: 1,
      goal: { cmp: '<', target: 50 },
    },
    { label: `GET /api/peers?limit=1000, ${TOTAL} peers: p50 (ms)`, value: list1000.p50, digits: 1 },
    {
      label: `GET /api/peers?limit=1000, ${TOTAL} peers: p99 (ms)`,
      value: list1000.p99,
      digits: 1,
      goal: { cmp: '<', target: 50 },
    },
    {
      label: '  filtered by group+tag / by name substring, p99 (ms)',
      text: `${percentile(filtered, 99).toFixed(1)} / ${percentile(searched, 99).toFixed(1)}`,
    },
    ...(wgShowMs !== undefined
      ? [{ label: `  of which wg show dump of ${TOTAL} peers, median (ms)`, value: wgShowMs, digits: 1 }]
      : []),
    ...(moduleApply
      ? [
          {
            label: `apply ${TOTAL} peers via the wireguard module, one changed (ms)`,
            value: moduleApply.incremental_apply_ms,
            digits: 0,
            goal: { cmp: '<', target: 2000 },
          },
          {
            label: `  to an empty interface (ms); live: ${moduleApply.running ? moduleApply.mode : 'no'}`,
            value: moduleApply.first_apply_ms,
            digits: 0,
          },
        ]
      : []),
    {
      label: `PUT one peer of ${TOTAL} (enable/disable, allowed IPs, expiry): p50 (ms)`,
      value: percentile(putMs, 50),
      digits: 1,
      goal: { cmp: '<', target: 20 },
    },
    {
      label: `PUT one peer of ${TOTAL}: p99 (ms)`,
      value: percentile(putMs, 99),
      digits: 1,
      goal: { cmp: '<', target: 50 },
    },
    {
      label: '  PUT enabled, median / max of 10 (ms); PUT description, median (ms)',
      text: `${median(applyMs).toFixed(1)} / ${Math.max(...applyMs).toFixed(1)}; ${median(describeMs).toFixed(1)}`,
    },
    {
      label: `add one peer with ${TOTAL} present: p50 (ms)`,
      value: percentile(addOneMs, 50),
      digits: 1,
      goal: { cmp: '<', target: 30 },
    },
    { label: '  p99 (ms)', value: percentile(addOneMs, 99), digits: 1 },
    {
      label: `add ${BATCH_ADDS} peers through POST /api/peers/batch (s)`,
      value: batch.ms / 1000,
      digits: 2,
      goal: { cmp: '<', target: 5 },
    },
    ...(syncconfMs !== undefined
      ? [
          {
            label: `  for comparison: wg syncconf of ${TOTAL} peers, unchanged file (ms)`,
            value: syncconfMs,
            digits: 0,
          },
        ]
      : []),
  ];
  notes.push(
    `peers 1-${2 * API_ADDS} were added through the API (timed); the other ${bulk} were written into the stopped cell's SQLite file, ` +
      "their private keys and PSKs encrypted through the cell's own Vault class, users rows with one shared scrypt hash",
    `a generated login password (≥ 128 bits) is stored as SHA-256; scrypt (${scryptMs.toFixed(0)} ms here) is only for passwords a person chooses. Each add encrypts the peer's private key and PSK into the vault and applies that one peer`,
    "list latency: one keep-alive client, sequential requests at random page offsets; PUT: the round trip of one peer's change, which applies that peer alone (wg set … remove / wg addconf of it) before answering; a description-only PUT does not touch the interface",
    `after the run the interface reported ${after.peers.length} peers (expected ${liveAfterAdds}), running=${after.running}`,
    moduleApply
      ? `module apply (goal row): ${moduleApply.note}; the PUT row is the same work end to end (load the live peers and their PSKs, validate, wg show dump, change what differs, audit, answer)`
      : 'scripts/bench/wireguard.mjs (benchApply) is absent, so the apply goal is the PUT round trip through the cell',
  );
  Object.assign(json, {
    scrypt_ms: round2(scryptMs),
    add_sequential: {
      total_s: round2(seqTotalMs / 1000),
      per_peer_ms: round2(seqTotalMs / API_ADDS),
      p50_ms: round2(percentile(seqLatencies, 50)),
      p99_ms: round2(percentile(seqLatencies, 99)),
    },
    add_concurrent: {
      clients: CONCURRENCY,
      total_s: round2(parTotalMs / 1000),
      per_peer_ms: round2(parTotalMs / API_ADDS),
      p50_ms: round2(percentile(parLatencies, 50)),
      p99_ms: round2(percentile(parLatencies, 99)),
    },
    bulk_write_s: round2(bulkMs / 1000),
    list_limit_100: {
      p50_ms: round2(list100.p50),
      p99_ms: round2(list100.p99),
      max_ms: round2(list100.max),
      requests: list100.count,
    },
    list_limit_1000: {
      p50_ms: round2(list1000.p50),
      p99_ms: round2(list1000.p99),
      max_ms: round2(list1000.max),
      requests: list1000.count,
    },
    list_filtered_p99_ms: round2(percentile(filtered, 99)),
    list_search_p99_ms: round2(percentile(searched, 99)),
    wg_show_dump_ms: wgShowMs === undefined ? null : round2(wgShowMs),
    apply_put_ms: {
      median: round2(median(applyMs)),
      max: round2(Math.max(...applyMs)),
      samples: applyMs.map(Math.round),
    },
    put_description_ms: round2(median(describeMs)),
    put_one_peer_ms: {
      p50: round2(percentile(putMs, 50)),
      p99: round2(percentile(putMs, 99)),
      max: round2(Math.max(...putMs)),
      requests: putMs.length,
    },
    add_one_with_10k_ms: {
      p50: round2(percentile(addOneMs, 50)),
      p99: round2(percentile(addOneMs, 99)),
      requests: addOneMs.length,
    },
    batch_add_1000_s: round2(batch.ms / 1000),
    wg_syncconf_ms: syncconfMs === undefined ? null : round2(syncconfMs),
    peers: TOTAL,
  });
  return { rows, notes, json };
}

/** Writes `count` peers as the cell would (rows, login, vault secrets) into the stopped cell's database. */
export async function bulkInsert({ dist, dataDir, count, passwordHash }) {
  const { openDatabase } = await dist('db/database.js');
  const { openVault } = await dist('features/vault/vault.js');
  const { silentLogger } = await dist('lib/logger.js');
  const { generateKeyPair, generatePresharedKey } = await dist('features/wireguard/keys.js');
  const database = openDatabase(join(dataDir, 'cell.db'));
  try {
    const vault = await openVault({ dataDir, db: database.db, logger: silentLogger });
    // the lowest free addresses, as the cell's nextFreeAddress would pick them, without rescanning per peer
    const toInt = (a) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const toText = (n) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
    const taken = new Set(
      (await database.db.selectFrom('peers').select('address').execute()).map((r) => toInt(r.address)),
    );
    const [base, prefix] = SUBNET.split('/');
    const last = toInt(base) + 2 ** (32 - Number(prefix)) - 2;
    let cursor = toInt(base) + 2; // .1 is the cell's
    const BATCH = 500;
    for (let start = 0; start < count; start += BATCH) {
      await database.db.transaction().execute(async (trx) => {
        for (let i = start; i < Math.min(count, start + BATCH); i++) {
          const now = new Date().toISOString();
          const name = `bulk-${String(i).padStart(5, '0')}`;
          while (taken.has(cursor)) cursor++;
          if (cursor > last) throw new Error(`${SUBNET} is full`);
          const address = toText(cursor);
          taken.add(cursor);
          const user = await trx
            .insertInto('users')
            .values({
              username: name,
              role: 'peer',
              password_hash: passwordHash,
              must_change_password: 0,
              disabled: 0,
              created_at: now,
              updated_at: now,
              password_changed_at: now,
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          const keys = generateKeyPair();
          const { id } = await trx
            .insertInto('peers')
            .values({
              name,
              description: '',
              user_id: user.id,
              public_key: keys.publicKey,
              address,
              dns: '[]',
              allowed_ips: '[]',
              peer_group: i % 3 === 0 ? 'family' : null,
              tags: JSON.stringify([`t${i % 10}`]),
              enabled: 1,
              expires_at: null,
              created_at: now,
              updated_at: now,
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          await vault.put(`peer/${id}/private_key`, keys.privateKey, trx);
          await vault.put(`peer/${id}/psk`, generatePresharedKey(), trx);
        }
      });
    }
  } finally {
    await database.close();
  }
}
