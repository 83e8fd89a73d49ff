import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync } from 'node:fs';
import type { CellConfig } from './config.js';
import { openDatabase, type CellDatabase } from './db/database.js';
import { DataDirLock } from './db/data-dir-lock.js';
import type { Logger } from './lib/logger.js';
import { SqliteSessionStore } from './http/session.js';
import { SlidingWindowLimiter, SlottedWindowLimiter } from './http/rate-limit.js';
import { KnownHosts } from './http/hosts.js';
import { refreshKnownHosts } from './features/config/service.js';
import { SetupState } from './features/setup/service.js';
import { StatusRegistry } from './features/status/service.js';
import { HealthMonitor, probeDatabase } from './features/health/service.js';
import { AuditLog } from './features/audit/service.js';
import { openVault, type VaultHooks } from './features/vault/vault.js';
import { PeerNetwork } from './features/peers/network.js';
import { InterfaceOwnedError, InterfaceOwner } from './features/wireguard/owner.js';
import { AuditRetention } from './features/audit/retention.js';
import { Store } from './features/store/service.js';
import { InstalledServices } from './features/services/service.js';
import { caddyEnabled, CaddyService } from './features/caddy/service.js';
import { reviveInstalledServices } from './features/services/revive.js';
import { DnsService } from './features/dns/service.js';
import { ConsoleAssets } from './features/console/service.js';
import { buildApp } from './app.js';
import { CellLinks } from './features/cells/service.js';
import { LinkFirewall } from './features/cells/enforcer.js';
import { LinkListener, PeerSyncListener, httpTransport } from './features/cells/transport.js';
import { cellAddress } from './features/wireguard/addresses.js';
import { readCellSettings } from './features/config/service.js';
import { TunnelListener } from './http/tunnel-listener.js';
import type { CellDeps } from './deps.js';

const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface Cell {
  deps: CellDeps;
  database: CellDatabase;
  server: Server;
  url: string;
  stop(): Promise<void>;
}

/**
 * Takes the data dir (one cell per data dir: DataDirLock), opens the database, migrates, builds
 * the app and listens. `stop()` undoes it all, in reverse. A start that fails lets the data dir go.
 */
/** Seams a test entry point may pass (test/support/rotation-pause-cell.ts); the product passes none. */
export interface CellHooks {
  vault?: VaultHooks;
}

export async function startCell(config: CellConfig, logger: Logger, hooks: CellHooks = {}): Promise<Cell> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = new DataDirLock(config.dataDir);
  lock.start();
  try {
    // Another live cell's interface: refuse before anything starts (its tunnels are not ours to take).
    if (config.wireguard.mode !== 'off') {
      const owner = new InterfaceOwner(config.dataDir, config.wireguard.interface, config.wireguard.netns).check();
      if (owner.kind === 'other_live') throw new InterfaceOwnedError(owner.record, true);
    }
    return await startLocked(config, logger, lock, hooks);
  } catch (err) {
    lock.stop();
    throw err;
  }
}

async function startLocked(config: CellConfig, logger: Logger, lock: DataDirLock, hooks: CellHooks): Promise<Cell> {
  const startedAt = Date.now();
  const database = openDatabase(config.dbFile);
  const applied = await database.migrate();
  if (applied.length) logger.info('migrations applied', { migrations: applied });

  // Before anything else reads a secret: creates the identity, or repairs an interrupted rotation, or refuses.
  const vault = await openVault({ dataDir: config.dataDir, db: database.db, logger, hooks: hooks.vault });

  const setup = new SetupState();
  await setup.load(database.db);
  const status = new StatusRegistry();
  const health = new HealthMonitor(database.db, database.sqlite, config.dataDir, config.health, logger);
  const sessions = new SqliteSessionStore(database, config.session.absoluteMs);
  const loginLimiter = new SlidingWindowLimiter(config.rateLimit.loginFailures, config.rateLimit.loginWindowMs);
  const apiLimiter = new SlottedWindowLimiter(config.rateLimit.apiPerMinute, 60_000);
  const audit = new AuditLog(database.db, database.sqlite);
  let peerNetworkRef: PeerNetwork | undefined;
  const tunnelOf = () => tunnelAddress(peerNetworkRef, setup);
  const store = await Store.open({ db: database.db, vault, audit, logger, config, tunnel: tunnelOf });
  const services = new InstalledServices({
    db: database.db,
    vault,
    audit,
    logger,
    runtime: store.runtime,
    cellId: store.cellId,
    ...(caddyEnabled(config) ? { httpsPort: config.reach.httpsPort } : {}),
  });
  store.attach(services);
  let cellUpstream = '';
  const caddy = new CaddyService({
    config,
    db: database.db,
    vault,
    logger,
    web: store,
    cellUpstream: () => cellUpstream,
    tunnel: tunnelOf,
  });
  const dns = new DnsService({ config, db: database.db, logger, tunnel: tunnelOf });
  const network = new PeerNetwork(database.db, vault, config, logger, {
    audit,
    driftCheckMs: config.wireguard.driftCheckMs,
  });
  /** The API's port while it also listens on the tunnel address (set below, once it listens). */
  let apiOnTunnel: number | undefined;
  const dnsOnTunnel = config.reach.mode === 'auto' && !config.wireguard.netns;
  const firewall = new LinkFirewall({
    iface: config.wireguard.interface,
    netns: config.wireguard.netns ?? undefined,
    syncPort: config.cells.syncPort,
    logger,
    off: config.wireguard.mode === 'off',
    // the cell itself on its tunnel address, for the links' cell_only and services policies
    cellPorts: () => ({
      tcp: [...(apiOnTunnel ? [apiOnTunnel] : []), ...(dnsOnTunnel ? [config.reach.dnsPort] : [])],
      udp: dnsOnTunnel ? [config.reach.dnsPort] : [],
    }),
  });
  const cells = new CellLinks({
    db: database.db,
    vault,
    audit,
    logger,
    network,
    syncPort: config.cells.syncPort,
    transport: httpTransport,
    enforcer: firewall,
    maxRetryMs: config.cells.retryMaxMs,
  });
  network.extraPeers = () => cells.linkPeers();
  // Its listen address names the cell too, unless that is every address (0.0.0.0, ::).
  const listenName = ['0.0.0.0', '::', ''].includes(config.host) ? [] : [config.host];
  const knownHosts = new KnownHosts([...listenName, ...config.http.allowedHosts]);
  await refreshKnownHosts(database.db, knownHosts);
  const deps: CellDeps = {
    caddy,
    dns,
    knownHosts,
    config,
    db: database.db,
    logger,
    sessions,
    loginLimiter,
    apiLimiter,
    setup,
    status,
    health,
    audit,
    vault,
    version: VERSION,
    startedAt,
    peerNetwork: network,
    peerDeletionHooks: [services.accounts.peerDeletionHook],
    store,
    services,
    cells,
    peerChanges: {
      changed: () =>
        void cells.peersChanged().catch((err) => logger.warn('peer-sync diff failed', { error: String(err) })),
    },
    console: new ConsoleAssets(config.consoleDir, logger),
  };
  const { peerNetwork } = deps;
  peerNetworkRef = peerNetwork;
  // Peer-sync listens on the cell's own tunnel address, on its own port (not the API's, not Caddy's).
  const tunnelHost = async () => cellAddress((await readCellSettings(database.db)).network.subnet);
  const syncListener = new PeerSyncListener(cells, tunnelHost, config.cells.syncPort, logger);
  // One-step invites: the invited cell delivers its response to this listener (TCP, the WireGuard port's number).
  let linkListener: LinkListener | undefined;
  if (config.wireguard.mode !== 'off' && !config.wireguard.netns) {
    const wgPort = async () => (await readCellSettings(database.db)).network.wireguard_port;
    linkListener = new LinkListener(cells, wgPort, logger);
    cells.attachOneStep(linkListener);
  }
  let tunnel: TunnelListener | undefined;

  status.register('database', () => {
    const probe = probeDatabase(database.sqlite);
    return probe.ok ? { state: 'ok', file: config.dbFile } : { state: 'down', error: probe.error };
  });
  status.register('setup', () => ({
    state: setup.isComplete() ? 'ok' : 'not_configured',
    complete: setup.isComplete(),
  }));
  status.register('vault', () => vault.status());
  status.register('wireguard', async () => {
    const wg = await peerNetwork.status();
    const base = {
      interface: wg.interface,
      mode: 'mode' in wg ? wg.mode : null,
      adopted: 'adopted' in wg ? (wg.adopted ?? false) : false,
    };
    if (wg.running) {
      const api = tunnel?.status() ?? { url: null, reason: 'http.listen_on_wireguard is off' };
      const forwarding = 'forwarding' in wg ? (wg.forwarding ?? null) : null;
      const peers = wg.peers.length;
      const tunnelApi = { api_url: api.url, api_reason: api.reason };
      return { state: 'ok', vpn: 'up', ...base, reason: null, peers, ...tunnelApi, forwarding };
    }
    if (config.wireguard.mode === 'off') return { state: 'not_configured', vpn: 'off', ...base, reason: wg.reason };
    if (!setup.isComplete()) return { state: 'not_configured', vpn: 'waiting_for_setup', ...base, reason: wg.reason };
    if (wg.reason?.startsWith('starting')) return { state: 'degraded', vpn: 'starting', ...base, reason: wg.reason };
    // the cell's main job is not done: the whole cell is down, not a detail of it
    return { state: 'down', vpn: 'down', ...base, reason: wg.reason };
  });
  status.register('store', () => store.statusSummary());
  status.register('caddy', () => caddy.status());
  status.register('dns', () => dns.status());
  status.register('cells', () => {
    if (config.wireguard.mode === 'off' || config.wireguard.netns) {
      const reason = "peer-sync needs the WireGuard interface in the cell's own network namespace";
      return { state: 'not_configured', reason, forwarding: firewall.forwarding() };
    }
    const on = syncListener.listening;
    const link = linkListener?.listening;
    const forwarding = firewall.forwarding();
    // the link listener is open only while a one-step invite is: null otherwise
    const extra = { forwarding, link_listener: link ? `${link.address}:${link.port}` : null };
    if (!on) {
      const reason = syncListener.lastError ?? 'not listening yet';
      return { state: setup.isComplete() ? 'degraded' : 'not_configured', reason, ...extra };
    }
    const listening = `${on.address}:${on.port}`;
    return forwarding.state === 'failed'
      ? { state: 'degraded', sync_listener: listening, reason: forwarding.reason, ...extra }
      : { state: 'ok', sync_listener: listening, ...extra };
  });
  status.register('health', () => {
    const latest = health.latest;
    return latest
      ? { state: latest.status, last_check: latest.ts }
      : { state: 'degraded', error: 'no health sample yet' };
  });

  loginLimiter.start();
  apiLimiter.start();
  await sessions.purgeExpired();
  const purge = setInterval(() => void sessions.purgeExpired().catch(() => undefined), 10 * 60_000);
  purge.unref();

  // Installed services' routes are mounted before the first request; job recovery runs in the background.
  await store.start();
  deps.console.start();
  const app = buildApp(deps, database.sqlite);
  const server = createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  store.listeningOn((server.address() as AddressInfo).port); // a manifest may not publish on it
  // Peers reach the API through the tunnel: a listener on the WireGuard address, once it exists.
  // Not when the interface lives in another network namespace: this process cannot bind its address.
  if (config.http.listenOnWireguard && !config.wireguard.netns) {
    const port = () => (server.address() as AddressInfo).port;
    tunnel = new TunnelListener(app.callback(), port, logger);
    apiOnTunnel = port();
    peerNetwork.onInterfaceChange((address) => void tunnel?.sync(address));
  }
  if (config.host === '0.0.0.0' || config.host === '::') {
    logger.warn('listening on every interface with plain HTTP', {
      host: config.host,
      advice:
        'passwords and session cookies cross the network unencrypted: ' +
        'keep PIC_HOST=127.0.0.1; peers use the WireGuard address',
    });
  }
  await health.start();
  const retention = new AuditRetention(database.db, audit, vault, config.dataDir, config.audit.retentionDays, logger);
  retention.start();
  // The tunnel needs the wizard's network settings: before setup completes, it waits for it.
  // With thousands of peers, loading their keys takes seconds: wait briefly, then let it finish
  // in the background (status says "starting") rather than hold the whole cell back.
  if (setup.isComplete()) {
    const up = peerNetwork
      .start()
      .then(() => cells.enforce()) // link routes need the interface
      .catch((err) => logger.error('wireguard start failed', { error: String(err) }));
    // services publish on the tunnel address: only now can a container the engine failed to start bind it
    void up
      .then(() =>
        reviveInstalledServices({ db: database.db, runtime: store.runtime, cellId: store.cellId, logger, audit }),
      )
      .catch((err) => logger.error('reviving installed services failed', { error: String(err) }));
    await Promise.race([up, new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
  }
  // Links: site-to-site peers are part of the interface (extraPeers); routes, firewall and pushes follow.
  cells.start();
  // it retries until the tunnel address is up
  if (config.wireguard.mode !== 'off' && !config.wireguard.netns) syncListener.start();
  void cells.enforce();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  // Caddy reaches the cell on loopback whatever address the cell listens on.
  const loopback = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : host;
  cellUpstream = `${loopback}:${address.port}`;
  const convergeCaddy = () =>
    caddy.converge().catch((err) => logger.error('caddy: config load failed', { error: String(err) }));
  store.onWebRoutesChanged(() => void convergeCaddy());
  // a service installed or removed: the links' policies open its ports, or not, at once
  store.onWebRoutesChanged(() => void cells.enforce());
  caddy.start();
  dns.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      health.stop();
      retention.stop();
      await caddy.stop();
      await dns.stop();
      await syncListener.stop();
      await cells.stop();
      await store.stop();
      await tunnel?.stop();
      await peerNetwork.stop();
      clearInterval(purge);
      loginLimiter.stop();
      apiLimiter.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await database.close();
      deps.console.stop();
      lock.stop();
    })());

  return { deps, database, server, url, stop };
}

/** The cell's tunnel address once its interface is up (and setup is complete), else why not yet. */
async function tunnelAddress(
  peerNetwork: PeerNetwork | undefined,
  setup: SetupState,
): Promise<{ address: string } | { reason: string }> {
  if (!setup.isComplete()) return { reason: 'waiting for setup to complete' };
  if (!peerNetwork) return { reason: 'starting' };
  const wg = await peerNetwork.status();
  if (!wg.running || !('address' in wg)) {
    return { reason: `waiting for the WireGuard interface${wg.reason ? `: ${wg.reason}` : ''}` };
  }
  return { address: wg.address.split('/')[0]! };
}
