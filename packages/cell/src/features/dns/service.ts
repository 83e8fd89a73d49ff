/**
 * The cell's resolver: dnsmasq (Debian's dnsmasq-base), listening on the cell's WireGuard address.
 * It answers the cell's domain and every name under it with that address (split horizon: the same
 * names resolve to the tunnel address only for devices on the tunnel), answers the custom records,
 * and forwards everything else to the upstreams in cell.yaml. Like Caddy it is started detached,
 * outlives the cell, is adopted on the next start and supervised (features/caddy).
 *
 * Why dnsmasq: one small process with a plain config file and no zone files or control channel to
 * manage; it starts in milliseconds, so a zone reload is a restart of it (a query in that instant
 * is retried by the client). unbound or knot-resolver would reload without a restart, but need a
 * control socket and a larger config for the same job.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import type { CellConfig } from '../../config.js';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../lib/logger.js';
import { DetachedProcess } from '../../lib/detached-process.js';
import type { SubsystemStatus } from '../status/service.js';
import { readCellSettings } from '../config/service.js';
import { findExecutable } from '../wireguard/commands.js';
import { caddyEnabled } from '../caddy/service.js';
import { TunnelSupervisor, type TunnelAddress } from '../../lib/tunnel-supervisor.js';
import { renderDnsmasqConfig, type DnsRecord } from './config.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { errors } from '../../http/errors.js';
import { deleteRecord, findRecord, findSameRecord, insertRecord, listRecords } from './queries.js';

export interface DnsDeps {
  config: CellConfig;
  db: Db;
  logger: Logger;
  tunnel: TunnelAddress;
}

/** Asks `server` for `name` (A), giving up after `timeoutMs`. */
export async function queryA(server: string, port: number, name: string, timeoutMs = 1000): Promise<string[]> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([`${server}:${port}`]);
  return resolver.resolve4(name);
}

export class DnsService {
  private readonly dir: string;
  readonly configFile: string;
  private readonly supervisor: TunnelSupervisor;
  private address: string | undefined;
  private runningConfig: string | undefined;
  private lastError: string | null = null;
  private reloadedAt: string | null = null;

  constructor(private readonly d: DnsDeps) {
    this.dir = join(d.config.dataDir, 'dns');
    this.configFile = join(this.dir, 'dnsmasq.conf');
    this.supervisor = new TunnelSupervisor({
      logName: 'dns',
      what: 'the resolver',
      tunnel: d.tunnel,
      logger: d.logger,
      prepare: (address) => this.prepare(address),
    });
  }

  private get process(): DetachedProcess | undefined {
    return this.supervisor.process;
  }

  /** The resolver runs where Caddy does: on the tunnel address in the cell's own namespace. */
  get enabled(): boolean {
    return caddyEnabled(this.d.config);
  }

  get listenAddress(): string | undefined {
    return this.address;
  }

  start(): void {
    if (this.enabled) this.supervisor.start();
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }

  /** dnsmasq's detached process for the tunnel's address, with its config file. */
  private async prepare(address: string): Promise<DetachedProcess> {
    const dnsmasq = findExecutable('dnsmasq');
    if (!dnsmasq) throw new Error("'dnsmasq' is not installed (Debian package dnsmasq-base)");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.address = address;
    // What an adopted copy runs with is the file as it is now; a new one reads what render() writes.
    this.runningConfig = existsSync(this.configFile) ? readFileSync(this.configFile, 'utf8') : undefined;
    if (this.runningConfig === undefined) writeFileSync(this.configFile, await this.render(), { mode: 0o644 });
    const arg = `--conf-file=${this.configFile}`;
    return new DetachedProcess(
      {
        name: 'dnsmasq',
        command: dnsmasq,
        args: ['--keep-in-foreground', '--log-facility=-', arg],
        ownerMark: arg,
        pidFile: join(this.dir, 'dnsmasq.pid'),
        logFile: join(this.dir, 'dnsmasq.log'),
        beforeSpawn: () => (this.runningConfig = readFileSync(this.configFile, 'utf8')),
        ready: () => this.answers(),
        converge: () => this.converge(),
      },
      this.d.logger,
    );
  }

  private async render(): Promise<string> {
    const { domain } = (await readCellSettings(this.d.db)).identity;
    const records = (await listRecords(this.d.db)).map(({ name, type, value }) => ({ name, type, value }));
    return renderDnsmasqConfig({
      listen: this.address!,
      port: this.d.config.reach.dnsPort,
      domain,
      upstreams: this.d.config.reach.dnsUpstreams,
      records,
    });
  }

  /** Resolves once the resolver answers the cell's own name (3 s at most). */
  private async answers(): Promise<void> {
    const { domain } = (await readCellSettings(this.d.db)).identity;
    const until = Date.now() + 3000;
    for (;;) {
      try {
        await queryA(this.address!, this.d.config.reach.dnsPort, domain, 300);
        return;
      } catch (err) {
        if (Date.now() > until)
          throw new Error(`the resolver does not answer for ${domain}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Rewrites the config from the database; restarts the resolver when it changed (a zone reload). */
  converge(force = false): Promise<void> {
    return this.supervisor.serialize(async () => {
      if (!this.process || !this.address) return;
      const tunnel = await this.d.tunnel().catch(() => undefined);
      if (tunnel && 'address' in tunnel) this.address = tunnel.address; // a new subnet moves it
      const text = await this.render();
      if (!force && text === this.runningConfig) return;
      writeFileSync(this.configFile, text, { mode: 0o644 });
      try {
        await this.process.replace();
        this.reloadedAt = new Date().toISOString();
        this.lastError = null;
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        throw err;
      }
    });
  }

  status(): SubsystemStatus {
    if (!this.enabled)
      return { state: 'not_configured', reason: 'the resolver runs with Caddy on the tunnel address (see caddy)' };
    if (!this.process) return { state: 'not_configured', reason: this.supervisor.waiting };
    const p = this.process.state();
    return {
      state: p.running && !this.lastError ? 'ok' : 'degraded',
      pid: p.pid,
      adopted: p.adopted,
      restarts: p.restarts,
      last_restart: p.last_restart,
      listen: `${this.address}:${this.d.config.reach.dnsPort}`,
      reloaded_at: this.reloadedAt,
      ...(this.lastError || (!p.running && p.last_error) ? { error: this.lastError ?? p.last_error } : {}),
    };
  }
}

/** Adds a custom record inside `trx`; 409 when the same name, type and value exist already. */
export async function addRecord(trx: Kysely<Database>, r: DnsRecord) {
  if (await findSameRecord(trx, r))
    throw errors.conflict('that record exists already', { name: 'a record with this name, type and value exists' });
  return insertRecord(trx, r);
}

/** Deletes a custom record inside `trx`; 404 for an id that names none. */
export async function removeRecord(trx: Kysely<Database>, id: number): Promise<void> {
  if (!Number.isSafeInteger(id) || id < 1 || !(await findRecord(trx, id)))
    throw errors.notFound('no DNS record with that id');
  await deleteRecord(trx, id);
}
