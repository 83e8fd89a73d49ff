/**
 * Caddy in front of the cell: a module with start()/stop(). Once the WireGuard interface has its
 * address, it adopts the Caddy this data dir owns (or starts one, detached: it outlives the cell),
 * supervises it, and converges its config through the admin API (POST /load, JSON). A config load
 * is graceful in Caddy: open connections finish on the old config, so adding or removing a service
 * subdomain, or a new certificate, drops nothing.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellConfig } from '../../config.js';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../lib/logger.js';
import { DetachedProcess } from '../../lib/detached-process.js';
import { TunnelSupervisor, type TunnelAddress } from '../../lib/tunnel-supervisor.js';
import type { SubsystemStatus } from '../status/service.js';
import type { Vault } from '../vault/vault.js';
import { readCellSettings } from '../config/service.js';
import { findExecutable } from '../wireguard/commands.js';
import { ADMIN_ORIGIN, adminRequest, waitForAdmin } from './admin.js';
import { bootstrapConfig, buildCaddyConfig, type WebUpstream } from './config.js';
import { CellCertificate, RENEW_BEFORE_DAYS, daysLeft, type ServedCertificate } from './certificate.js';

/** What the cell tells Caddy about installed services: their subdomains and where their web port is. */
export interface WebRouteSource {
  webRoutes(): Promise<Array<{ id: string; subdomain: string; dial: string; tls?: boolean }>>;
}

export type { TunnelAddress } from '../../lib/tunnel-supervisor.js';

export interface CaddyDeps {
  config: CellConfig;
  db: Db;
  vault: Vault;
  logger: Logger;
  web: WebRouteSource;
  tunnel: TunnelAddress;
  /** host:port of the cell's own listener, known once it listens. */
  cellUpstream: () => string;
}

const RENEW_CHECK_MS = 60 * 60_000;

/** Whether the cell runs Caddy: reach on, and WireGuard's interface in the cell's own namespace. */
export function caddyEnabled(config: Pick<CellConfig, 'reach' | 'wireguard'>): boolean {
  return config.reach.mode !== 'off' && config.wireguard.mode !== 'off' && config.wireguard.netns === null;
}

export class CaddyService {
  readonly certificate: CellCertificate;
  private readonly dir: string;
  private readonly adminSocket: string;
  private readonly supervisor: TunnelSupervisor;
  private address: string | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private lastLoad: { at: string; error: string | null } | undefined;
  private served: ServedCertificate | undefined;

  constructor(private readonly d: CaddyDeps) {
    this.certificate = new CellCertificate(d.db, d.vault, d.logger);
    this.dir = join(d.config.dataDir, 'caddy');
    this.adminSocket = join(this.dir, 'admin.sock');
    this.supervisor = new TunnelSupervisor({
      logName: 'caddy',
      what: 'caddy',
      tunnel: d.tunnel,
      logger: d.logger,
      prepare: async (address) => this.prepare(address),
      started: () => {
        this.renewTimer = setInterval(() => void this.renewIfDue(), RENEW_CHECK_MS);
        this.renewTimer.unref();
      },
    });
  }

  private get process(): DetachedProcess | undefined {
    return this.supervisor.process;
  }

  get enabled(): boolean {
    return caddyEnabled(this.d.config);
  }

  /** Begins waiting for the tunnel's address (checked every second); Caddy comes up once it is there. */
  start(): void {
    if (this.enabled) this.supervisor.start();
  }

  /** Stops supervising. Caddy keeps serving (it outlives the cell); the next cell adopts it. */
  async stop(): Promise<void> {
    if (this.renewTimer) clearInterval(this.renewTimer);
    await this.supervisor.stop();
  }

  /** Caddy's detached process for the tunnel's address, its bootstrap config written. */
  private prepare(address: string): DetachedProcess {
    const caddy = findExecutable('caddy');
    if (!caddy) throw new Error("'caddy' is not installed (Debian package caddy)");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const bootstrap = join(this.dir, 'bootstrap.json');
    writeFileSync(bootstrap, JSON.stringify(bootstrapConfig(this.adminSocket, ADMIN_ORIGIN)), { mode: 0o600 });
    this.address = address;
    return new DetachedProcess(
      {
        name: 'caddy',
        command: caddy,
        args: ['run', '--config', bootstrap],
        ownerMark: bootstrap,
        pidFile: join(this.dir, 'caddy.pid'),
        logFile: join(this.dir, 'caddy.log'),
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: this.dir,
          XDG_DATA_HOME: join(this.dir, 'data'),
          XDG_CONFIG_HOME: join(this.dir, 'config'),
        },
        beforeSpawn: () => rmSync(this.adminSocket, { force: true }),
        ready: () => waitForAdmin(this.adminSocket),
        converge: () => this.converge(),
      },
      this.d.logger,
    );
  }

  /** Brings Caddy's config to what the cell wants now (services, certificate). Serialized. */
  converge(): Promise<void> {
    return this.supervisor.serialize(() => this.load());
  }

  private async load(renewed?: ServedCertificate): Promise<void> {
    if (!this.address) return;
    const tunnel = await this.d.tunnel().catch(() => undefined);
    if (tunnel && 'address' in tunnel) this.address = tunnel.address; // a new subnet moves it
    const { domain } = (await readCellSettings(this.d.db)).identity;
    const { reach } = this.d.config;
    let tls: Parameters<typeof buildCaddyConfig>[0]['tls'];
    if (reach.tls === 'acme') tls = { mode: 'acme', email: reach.acmeEmail };
    else {
      this.served = renewed ?? (await this.certificate.ensure(domain));
      tls = { mode: 'internal', certificatePem: this.served.row.certificate_pem, keyPem: this.served.keyPem };
    }
    const routes = await this.d.web.webRoutes();
    // Upstreams that speak HTTPS are checked against the cell's CA, written where Caddy reads it.
    const caFile = join(this.dir, 'cell-ca.pem');
    if (routes.some((r) => r.tls)) writeFileSync(caFile, await this.certificate.ca.certificatePem(), { mode: 0o644 });
    const services: WebUpstream[] = routes.map((r) => ({
      id: r.id,
      host: `${r.subdomain}.${domain}`,
      dial: r.dial,
      ...(r.tls ? { tls: { rootCaFile: caFile, serverName: `${r.subdomain}.${domain}` } } : {}),
    }));
    const config = buildCaddyConfig({
      adminSocket: this.adminSocket,
      adminOrigin: ADMIN_ORIGIN,
      storageDir: join(this.dir, 'data'),
      listen: [this.address, ...reach.lanAddresses].map((a) => `${a}:${reach.httpsPort}`),
      domain,
      cellUpstream: this.d.cellUpstream(),
      services,
      tls,
    });
    try {
      await adminRequest(this.adminSocket, 'POST', '/load', config, 30_000);
      this.lastLoad = { at: new Date().toISOString(), error: null };
    } catch (err) {
      this.lastLoad = { at: new Date().toISOString(), error: err instanceof Error ? err.message : String(err) };
      throw err;
    }
  }

  /** Issues a new certificate, loads it (gracefully), then revokes the one it replaces. */
  async renew(): Promise<{ serial: string; previous: string | undefined }> {
    if (!this.process) throw new Error('caddy is not running');
    const { domain } = (await readCellSettings(this.d.db)).identity;
    const { next, previous } = await this.certificate.issue(domain);
    await this.supervisor.serialize(() => this.load(next));
    if (previous && previous !== next.row.serial) await this.certificate.retire(previous);
    return { serial: next.row.serial, previous };
  }

  /** What the hourly timer runs: renews when fewer than RENEW_BEFORE_DAYS are left at `now`. */
  async renewIfDue(now = Date.now()): Promise<boolean> {
    if (this.d.config.reach.tls !== 'internal' || !this.served) return false;
    if (daysLeft(this.served.row, now) > RENEW_BEFORE_DAYS) return false;
    return this.renew().then(
      () => true,
      (err: unknown) => {
        this.d.logger.error('caddy: automatic renewal failed', { error: String(err) });
        return false;
      },
    );
  }

  /** The certificate being served: names, issuer, expiry. */
  async certStatus(): Promise<Record<string, unknown>> {
    const { reach } = this.d.config;
    if (reach.tls === 'acme')
      return { mode: 'acme', domains: null, issuer: "ACME (Caddy's own automation)", not_after: null, days_left: null };
    const cur = this.served ?? (await this.certificate.current());
    if (!cur)
      return {
        mode: 'internal',
        serial: null,
        domains: [],
        issuer: null,
        not_after: null,
        days_left: null,
        renew_before_days: RENEW_BEFORE_DAYS,
      };
    const ca = await this.certificate.ca.ready().catch(() => undefined);
    return {
      mode: 'internal',
      serial: cur.row.serial,
      domains: JSON.parse(cur.row.sans) as string[],
      issuer: ca?.certificate.subject ?? null,
      not_before: cur.row.not_before,
      not_after: cur.row.not_after,
      days_left: daysLeft(cur.row),
      renew_before_days: RENEW_BEFORE_DAYS,
    };
  }

  status(): SubsystemStatus {
    if (!this.enabled) {
      const { reach, wireguard } = this.d.config;
      const reason =
        reach.mode === 'off'
          ? 'reach.mode is off in cell.yaml'
          : wireguard.mode === 'off'
            ? 'WireGuard is off: Caddy listens on the tunnel address'
            : `the WireGuard interface runs in network namespace ${wireguard.netns}; ` +
              "Caddy needs its address in the cell's own";
      return { state: 'not_configured', reason };
    }
    if (!this.process) return { state: 'not_configured', reason: this.supervisor.waiting };
    const p = this.process.state();
    const listen = [this.address!, ...this.d.config.reach.lanAddresses].map(
      (a) => `${a}:${this.d.config.reach.httpsPort}`,
    );
    const loadError = this.lastLoad ? this.lastLoad.error : 'its config was not loaded yet';
    return {
      state: p.running && !loadError ? 'ok' : 'degraded',
      pid: p.pid,
      adopted: p.adopted,
      restarts: p.restarts,
      last_restart: p.last_restart,
      listen,
      config_loaded_at: this.lastLoad?.at ?? null,
      ...(loadError || (!p.running && p.last_error) ? { error: loadError ?? p.last_error } : {}),
    };
  }

  /** The PID of the Caddy process (tests; status). */
  pid(): number | null {
    return this.process?.state().pid ?? null;
  }
}
