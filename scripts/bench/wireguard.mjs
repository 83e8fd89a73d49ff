// Bench for issue 4's wireguard module: time to render and apply a config of 10,000 peers through
// WireGuardInterface (goal: apply < 2 s), in a throwaway network namespace. Where the machine cannot
// run an interface, it measures render + write only and says so in `note`. Figures are returned,
// never asserted. Imports the build from packages/cell/dist (the bench runner builds first).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = (root, p) => pathToFileURL(join(root, 'packages/cell/dist/features/wireguard', p)).href;

/** `count` peers with real public keys and PSKs, one /32 each in 10.64.0.0/10's first addresses. */
function makePeers(wg, count, offset = 0) {
  return Array.from({ length: count }, (_, n) => {
    const i = n + offset + 2; // .0 is the network, .1 the cell
    return {
      publicKey: wg.generateKeyPair().publicKey,
      presharedKey: wg.generatePresharedKey(),
      allowedIps: [`10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`],
    };
  });
}

const ms = (start) => Math.round((performance.now() - start) * 10) / 10;

/**
 * Renders and applies `peers` peers: the first apply adds them all to an empty interface, the
 * second changes one peer in the full list (the everyday case: one peer added, the rest untouched).
 * Returns { peers, running, mode, reason, keygen_ms, render_ms, first_apply_ms, incremental_apply_ms,
 * status_ms, config_bytes, note }. `cleanup` (the bench runner's Cleanup) is optional: when given,
 * the namespace and temp dir are also removed on Ctrl-C.
 */
export async function benchApply(root, { peers: count = 10_000, cleanup, log = () => {} } = {}) {
  const wg = await import(dist(root, 'index.js'));
  const testing = await import(dist(root, 'netns.test-support.js'));
  const dir = mkdtempSync(join(tmpdir(), 'pic-bench-wg-'));
  const skip = testing.wireguardTestSkipReason();
  let netns;
  let wgi;
  const undo = async () => {
    await wgi?.stop().catch(() => undefined);
    if (netns) await testing.deleteNetns(netns).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  const unregister = cleanup?.add(undo);
  try {
    if (!skip) netns = await testing.createNetns('picbwg');
    const cell = wg.generateKeyPair();
    log(`wireguard: generating ${count.toLocaleString('en-US')} peer keys`);
    let t = performance.now();
    const peers = makePeers(wg, count);
    const keygen_ms = ms(t);

    t = performance.now();
    const text = wg.renderWgConfig({ privateKey: cell.privateKey, listenPort: 51820, peers });
    const render_ms = ms(t);

    wgi = new wg.WireGuardInterface({
      name: testing.uniqueName('picb'),
      privateKey: cell.privateKey,
      listenPort: 51820,
      address: '10.64.0.1/10',
      configDir: dir,
      ...(netns ? { netns } : { mode: 'off' }),
    });
    await wgi.start([]);
    const started = await wgi.status();
    log(
      `wireguard: interface ${started.running ? `up (${started.mode})` : `not running: ${started.reason}`}; applying ${count} peers`,
    );

    const first = await wgi.apply(peers);
    const changed = [...peers.slice(0, -1), ...makePeers(wg, 1, count)];
    const second = await wgi.apply(changed);

    t = performance.now();
    const status = await wgi.status();
    const status_ms = ms(t);
    const livePeers = status.running ? status.peers.length : null;

    return {
      peers: count,
      running: started.running && first.applied,
      mode: started.mode,
      reason: started.running ? (first.applied ? null : first.reason) : started.reason,
      keygen_ms,
      render_ms,
      config_bytes: Buffer.byteLength(text),
      first_apply_ms: Math.round(first.durationMs * 10) / 10,
      incremental_apply_ms: Math.round(second.durationMs * 10) / 10,
      status_ms,
      live_peers: livePeers,
      note: started.running
        ? `validate, wg show dump, then only what differs (wg set … remove, wg addconf via a RAM file) on a live ${started.mode} interface in namespace ${netns}`
        : `interface cannot run here (${skip ?? started.reason}): figures are rendering and validating the config only`,
    };
  } finally {
    if (unregister) await unregister();
    else await undo();
  }
}

/** Adapter for scripts/bench/index.mjs's SECTIONS list (`{ name, load: () => import('./wireguard.mjs') }`). */
export const name = 'wireguard';
export const title = 'WireGuard (issue 4): render and apply a config of 10,000 peers';
export async function run(ctx) {
  const r = await benchApply(ctx.root, { cleanup: ctx.cleanup, log: ctx.log });
  const rows = [
    { label: 'generate 10,000 keypairs + PSKs (ms)', value: r.keygen_ms, digits: 0 },
    { label: 'render 10,000-peer config (ms)', value: r.render_ms, digits: 1 },
    {
      label: 'apply 10,000 peers to an empty interface (ms)',
      value: r.first_apply_ms,
      digits: 0,
      goal: { cmp: '<', target: 2000 },
    },
    {
      label: 'apply 10,000 peers with one changed (ms)',
      value: r.incremental_apply_ms,
      digits: 0,
      goal: { cmp: '<', target: 2000 },
    },
    { label: 'status with 10,000 peers: wg show dump (ms)', value: r.status_ms, digits: 0 },
  ];
  return { rows, notes: [r.note], json: r };
}
