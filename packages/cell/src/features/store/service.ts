import type { ContainerRuntime } from '@pic/runtime';
import type { ServiceManifest } from '@pic/manifest';
import { manifestLib } from './manifest-lib.js';
import type { SubsystemStatus } from '../status/service.js';
import { DEFAULT_CATALOG_DIR, type CellConfig } from '../../config.js';
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { AuditNotes } from '../../http/audit.js';
import { errors, HttpError } from '../../http/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { AuditLog } from '../audit/service.js';
import type { Vault } from '../vault/vault.js';
import { seedTrustKey, StoreCatalog, storeTrustedKeys, toRefusal, type CatalogView, type Refusal } from './catalog.js';
import {
  createRuntime,
  describeError,
  engineState,
  loopbackPort,
  objectNames,
  requireEngine,
  storeCellId,
  type EngineState,
} from './engine.js';
import { checkImages, type ImageCheck, type ImageVerification } from './images.js';
import { seedConfiguredKeys } from './trust.js';
import { Installer, ServiceBusyError, type InstallRequest } from './installer.js';
import { presentInstallation, presentJob, presentStore } from './presenter.js';
import { listTrustKeys } from '../vault/trust-keys.js';
import { reservedPortProblems } from './specs.js';
import { readCellSettings } from '../config/service.js';
import {
  findInstallation,
  listInstallations,
  latestJobs,
  hasUnfinishedJob,
  type Installation,
  type JobRow,
} from './queries.js';

export interface StoreDeps {
  db: Db;
  vault: Vault;
  audit: AuditLog;
  logger: Logger;
  config: Pick<CellConfig, 'store' | 'port' | 'reach' | 'wireguard'>;
  /** The cell's WireGuard address while the tunnel is up in its own namespace (service ports publish there too). */
  tunnel?: () => Promise<{ address: string } | { reason: string }>;
}

/** store.publish_address, or by default 127.0.0.1 plus the WireGuard address while the tunnel is up. */
async function publishAddresses(d: StoreDeps): Promise<string[]> {
  const { store, wireguard } = d.config;
  if (!store.publishOnTunnel || !d.tunnel || wireguard.mode === 'off' || wireguard.netns !== null) {
    return store.publishAddresses;
  }
  const t = await d.tunnel().catch(() => undefined);
  if (!t || !('address' in t) || store.publishAddresses.includes(t.address)) return store.publishAddresses;
  return [...store.publishAddresses, t.address];
}

/**
 * What the store needs from the installed services' side (features/services implements it as
 * InstalledServices): mount and unmount a service's routes, and keep its accounts in step. Declared
 * here so the store never imports that feature; the dependency runs one way, services → store.
 */
export interface ServiceSide {
  mount(id: string, manifest: ServiceManifest): void;
  unmount(id: string): void;
  mounted(): string[];
  manifest(id: string): ServiceManifest | undefined;
  /** Whether any account deletion waits to be retried. */
  hasPendingDeletions(): Promise<boolean>;
  /** Retries pending account deletions (of one service, or all). */
  retryTombstones(serviceId?: string): Promise<unknown>;
  /** Why the service's account contract does not answer (null when it does), before it counts as installed. */
  contractProblem(id: string, manifest: ServiceManifest): Promise<string | null>;
  /** Inside the purge's transaction: forgets the service's accounts. */
  purge(trx: Transaction<Database>, serviceId: string): Promise<unknown>;
}

export interface StoreOptions {
  /** A runtime to use instead of the engine from the config (unit tests). */
  runtime?: ContainerRuntime;
  /** Where the store key to seed the trust keys with lives (default: this repository). */
  repoRoot?: string;
  now?: () => Date;
  healthPollMs?: number;
  /** How often pending account deletions are retried (default 5 minutes; 0: never by timer). */
  retryIntervalMs?: number;
}

/** A refusal as the API reports it: 422 with the refusal's code (the same snake_case as everywhere). */
export function refusalError(refusal: Refusal): HttpError {
  return new HttpError(422, refusal.code, refusal.reason);
}

export type PreparedInstall =
  | { kind: 'installed'; installation: Installation }
  | { kind: 'busy'; job: JobRow | undefined }
  | { kind: 'ready'; request: InstallRequest; warnings: Refusal[] };

/**
 * The store inside the cell: the signed catalog, the container engine, install/remove jobs,
 * the routes of installed services and their accounts. One per cell, built at start-up.
 */
/** Where an installed service's web port is: what Caddy proxies its subdomain to. */
export interface WebRoute {
  id: string;
  subdomain: string;
  /** 127.0.0.1:<published port> */
  dial: string;
  /** The port speaks HTTPS with the service's certificate (manifest web.tls). */
  tls?: boolean;
}

export class Store {
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly webListeners: Array<() => void> = [];

  private constructor(
    private readonly d: StoreDeps,
    readonly cellId: string,
    readonly runtime: ContainerRuntime,
    readonly catalog: StoreCatalog,
    readonly installer: Installer,
    private readonly options: StoreOptions,
  ) {}

  private side: ServiceSide | undefined;

  /** Hands the store the installed services' side; once, before start(). */
  attach(side: ServiceSide): void {
    this.side = side;
  }

  private get services(): ServiceSide {
    if (!this.side) throw new Error('the store has no services side: call attach() before start()');
    return this.side;
  }

  static async open(d: StoreDeps, options: StoreOptions = {}): Promise<Store> {
    // The key this repository ships, not the configured catalog's: a catalog never vouches for itself.
    const repoRoot = options.repoRoot ?? DEFAULT_CATALOG_DIR;
    await seedTrustKey(d.db, d.audit, d.logger, repoRoot);
    await seedConfiguredKeys(d.db, d.audit, d.logger, d.config.store.trustedKeys ?? []);
    const cellId = await storeCellId(d.db);
    const runtime = options.runtime ?? createRuntime(cellId, d.config.store.engineSocket);
    const catalog = new StoreCatalog(d.db, d.config.store.catalogDir, d.audit, d.logger, options.now);
    const installer = new Installer({
      db: d.db,
      vault: d.vault,
      audit: d.audit,
      logger: d.logger,
      runtime,
      cellId,
      ...(options.healthPollMs !== undefined ? { healthPollMs: options.healthPollMs } : {}),
      publishAddresses: () => publishAddresses(d),
      onInstalled: async (id, manifest) => {
        store.services.mount(id, manifest);
        store.webRoutesChanged();
        await store.services.retryTombstones(id);
      },
      contractProblem: (id, manifest) => store.services.contractProblem(id, manifest),
      onRemoving: (id) => {
        store.services.unmount(id);
        store.webRoutesChanged();
      },
      onPurge: async (trx, id) => void (await store.services.purge(trx, id)),
    });
    const store: Store = new Store(d, cellId, runtime, catalog, installer, options);
    return store;
  }

  /** Calls `listener` whenever a service with a web port comes or goes (Caddy converges its routes). */
  onWebRoutesChanged(listener: () => void): void {
    this.webListeners.push(listener);
  }

  private webRoutesChanged(): void {
    for (const listener of this.webListeners) listener();
  }

  /** The subdomains of installed services with a `web` port, and the loopback port each is published on. */
  async webRoutes(): Promise<WebRoute[]> {
    const routes: WebRoute[] = [];
    for (const id of this.services.mounted()) {
      const manifest = this.services.manifest(id);
      if (!manifest?.web || !manifest.subdomain) continue;
      try {
        const name = objectNames(this.cellId, id).container(manifest.web.container);
        const info = await this.runtime.inspectContainer(name);
        const port = loopbackPort(info, manifest.web.port);
        if (info.running && port) {
          const tls = manifest.web.tls === true;
          routes.push({ id, subdomain: manifest.subdomain, dial: `127.0.0.1:${port}`, ...(tls ? { tls } : {}) });
        }
      } catch (err) {
        const error = describeError(err);
        this.d.logger.warn('web route left out: its container is not reachable', { service: id, error });
      }
    }
    return routes;
  }

  /**
   * The addresses an installed service's `host` ports are published on, beside the ones the cell
   * would choose now; undefined when they agree, or it publishes none, or a container is not
   * running (its health says so). The engine fixes them when it creates a container: a service
   * installed while the tunnel was down, or before the VPN subnet changed, keeps the old ones.
   */
  async publishDrift(inst: Installation): Promise<{ published: string[]; wanted: string[] } | undefined> {
    const withHostPorts = inst.manifest.containers.filter((c) => (c.ports ?? []).some((p) => p.host !== undefined));
    if (withHostPorts.length === 0) return undefined;
    const wanted = [...new Set(await publishAddresses(this.d))].sort();
    const published = new Set<string>();
    const names = objectNames(this.cellId, inst.id);
    for (const c of withHostPorts) {
      const info = await this.runtime.inspectContainer(names.container(c.name)).catch(() => undefined);
      if (!info?.running) return undefined;
      for (const p of info.ports)
        if ((c.ports ?? []).some((m) => m.host === p.hostPort && m.protocol === p.protocol)) published.add(p.hostIp);
    }
    const sorted = [...published].sort();
    return sorted.join() === wanted.join() ? undefined : { published: sorted, wanted };
  }

  private listeningPort: number | undefined;

  /** The port the API listens on (config.port until the server reports the one it got, e.g. for port 0). */
  get apiPort(): number {
    return this.listeningPort ?? this.d.config.port;
  }

  /** Called once the HTTP server listens: the port it really got. */
  listeningOn(port: number): void {
    this.listeningPort = port;
  }

  get imageVerification(): ImageVerification {
    return this.d.config.store.imageVerification;
  }

  /**
   * After start-up: mounts the routes of installed services at once, then — in the background, so
   * a slow or absent engine never delays the cell — finishes or rolls back jobs a dead process left
   * and retries pending account deletions. `recovered` settles when that is done. Resolves once
   * the routes are mounted.
   */
  async start(): Promise<void> {
    for (const inst of await listInstallations(this.d.db))
      if (inst.state === 'installed') this.services.mount(inst.id, inst.manifest);
    this.recovered = this.recover();
    const every = this.options.retryIntervalMs ?? 5 * 60_000;
    if (every > 0) {
      this.retryTimer = setInterval(() => void this.services.retryTombstones().catch(() => undefined), every);
      this.retryTimer.unref();
    }
  }

  /** Settles once start-up recovery is done (tests, and stop()). */
  recovered: Promise<void> = Promise.resolve();

  private async recover(): Promise<void> {
    // Most starts have nothing to recover: then the engine (and its client library) is left alone.
    if (!(await hasUnfinishedJob(this.d.db)) && !(await this.services.hasPendingDeletions())) return;
    const engine = await engineState(this.runtime);
    if (!engine.reachable) {
      this.d.logger.warn('container engine not reachable; interrupted store jobs wait for it', {
        endpoint: engine.endpoint,
        reason: engine.reason,
      });
      return;
    }
    try {
      const { rolledBack, removed } = await this.installer.recover();
      if (rolledBack || removed)
        this.d.logger.info('store jobs recovered after a restart', { rolled_back: rolledBack, removed });
      await this.services.retryTombstones();
    } catch (err) {
      this.d.logger.error('store recovery failed', { error: describeError(err) });
    }
  }

  async stop(): Promise<void> {
    if (this.retryTimer) clearInterval(this.retryTimer);
    await this.recovered.catch(() => undefined);
    await this.installer.drain(5000);
  }

  engine(): Promise<EngineState> {
    return engineState(this.runtime);
  }

  /** For GET /api/status: how many services are installed, and whether the engine answers. */
  async statusSummary(): Promise<SubsystemStatus> {
    const installed = (await listInstallations(this.d.db)).filter((i) => i.state === 'installed').length;
    const engine = await this.engine();
    if (engine.reachable) return { state: 'ok', installed, engine: engine.version };
    // no engine and nothing installed is a store not in use, not a fault
    return { state: installed ? 'degraded' : 'not_configured', installed, engine: null, reason: engine.reason };
  }

  /**
   * POST /api/store/install: prepares (outside any transaction: verification is slow), then
   * begins the job in one transaction with the request's audit entry, starts it once that
   * committed, and with `wait` waits for its end. Returns the answer's status and body; refusals
   * throw. The audit entry's details are noted on `audit` as the request goes.
   */
  async install(
    id: string,
    wait: boolean,
    actor: string,
    audit: AuditNotes,
  ): Promise<{ status: number; body: unknown }> {
    const prepared = await this.prepareInstall(id, actor, (r) =>
      audit.note({ refusal: r.code, reason: r.reason, ...r.details }),
    );
    let answer: { status: number; body: unknown } | undefined;
    let started: (() => Promise<JobRow> | undefined) | undefined;
    await this.d.db.transaction().execute(async (trx) => {
      if (prepared.kind === 'installed') {
        audit.note({ already_installed: true, version: prepared.installation.version });
        answer = {
          status: 200,
          body: { ok: true, already_installed: true, service: presentInstallation(prepared.installation) },
        };
      } else if (prepared.kind === 'busy') {
        audit.note({ already_running: true, job: prepared.job?.id ?? null });
        answer = {
          status: 202,
          body: { ok: true, already_running: true, job: prepared.job ? presentJob(prepared.job) : null },
        };
        started = () => this.installer.inFlight(id);
      } else {
        const { request, warnings } = prepared;
        const job = await this.installer.begin(trx, request);
        audit.note({
          job: job.id,
          version: request.manifest.version,
          index_version: request.indexVersion,
          manifest_digest: request.manifestDigest,
          images: request.plans.map((p) => ({
            container: p.container,
            digest: p.actual ?? p.pinned,
            signed_by: p.signedBy ?? null,
            pull: p.pull ?? null,
          })),
          ...(warnings.length ? { image_warnings: warnings.map((w) => ({ refusal: w.code, reason: w.reason })) } : {}),
        });
        answer = {
          status: 202,
          body: { ok: true, job: presentJob(job), warnings: warnings.map((w) => ({ code: w.code, reason: w.reason })) },
        };
        started = () => this.installer.run(job, request);
      }
      // The audit entry joins the change it records: both commit, or neither.
      audit.writeIn(trx);
    });
    const run = started?.();
    if (!wait || !run) return answer!;
    // With `wait`: the answer is the finished job (200 healthy, 502 failed).
    const final = await run;
    const job = presentJob(final);
    return final.state === 'healthy'
      ? { status: 200, body: { ok: true, job } }
      : {
          status: 502,
          body: {
            ok: false,
            error: final.error ?? 'install failed',
            code: final.error_code ?? 'install_failed',
            fields: {},
            job,
          },
        };
  }

  /**
   * Everything that happens before an install job exists: idempotency (installed: nothing to do;
   * a job running: that job), the catalog and manifest verification, the engine, and the image
   * checks. A refusal throws 422 with its code and reason; `onRefusal` sees it first (for the audit
   * entry). Warn-mode findings come back as `warnings`.
   */
  async prepareInstall(id: string, actor: string, onRefusal: (r: Refusal) => void): Promise<PreparedInstall> {
    const { CatalogRefusal, manifestDigest } = await manifestLib();
    const inFlight = this.installer.inFlight(id);
    const existing = await findInstallation(this.d.db, id);
    if (inFlight || existing?.state === 'installing' || existing?.state === 'removing') {
      if (existing?.state === 'removing' && !inFlight) {
        throw new HttpError(
          409,
          'conflict',
          `${id} is half removed (a removal failed or was interrupted): POST /api/store/remove again first`,
        );
      }
      return { kind: 'busy', job: existing?.jobId ? await this.installer.job(existing.jobId) : undefined };
    }
    if (existing?.state === 'installed') return { kind: 'installed', installation: existing };

    let manifest: ServiceManifest;
    let indexVersion: number;
    try {
      const verified = await this.catalog.manifest(id);
      manifest = verified.manifest;
      indexVersion = verified.index.index.version;
    } catch (err) {
      if (err instanceof CatalogRefusal) {
        const refusal = toRefusal(err);
        onRefusal(refusal);
        if (err.code === 'not_listed') throw new HttpError(404, 'not_listed', refusal.reason);
        throw refusalError(refusal);
      }
      throw err;
    }
    // A manifest may not take a port this cell itself listens on (its WireGuard port, its API port).
    const { network } = await readCellSettings(this.d.db);
    const ports = reservedPortProblems(manifest, { wireguardPort: network.wireguard_port, apiPort: this.apiPort });
    if (Object.keys(ports).length > 0) {
      const reason = `${id} cannot be installed: ${Object.values(ports).join('; ')}`;
      const refusal: Refusal = { code: 'reserved_port', reason, details: ports };
      onRefusal(refusal);
      throw new HttpError(422, refusal.code, refusal.reason, ports);
    }
    await requireEngine(this.runtime);
    let check: ImageCheck;
    try {
      check = await checkImages(this.runtime, manifest, await storeTrustedKeys(this.d.db), this.imageVerification);
    } catch (err) {
      if (err instanceof CatalogRefusal) {
        const refusal = toRefusal(err);
        onRefusal(refusal);
        throw refusalError(refusal);
      }
      throw err;
    }
    for (const w of check.warnings) {
      this.d.logger.warn('image verification (warn mode) let an image through', {
        service: id,
        refusal: w.code,
        reason: w.reason,
      });
    }
    return {
      kind: 'ready',
      request: { id, manifest, manifestDigest: manifestDigest(manifest), indexVersion, plans: check.plans, actor },
      warnings: check.warnings,
    };
  }

  /**
   * POST /api/store/remove: removes the service (its data too with `purge`), the audit entry
   * joining the removal's final transaction. Not installed and no purge: nothing to do. A job
   * running for it: 409; a failure on the way: 502 remove_failed (POST again to retry).
   */
  async remove(id: string, purge: boolean, actor: string, audit: AuditNotes): Promise<Record<string, unknown>> {
    audit.note({ purge });
    const inst = await findInstallation(this.d.db, id);
    if (!inst && !purge) {
      audit.note({ purge, was_installed: false });
      return { ok: true, removed: false, reason: `${id} is not installed` };
    }
    await requireEngine(this.runtime);
    let job: JobRow | undefined;
    try {
      job = await this.installer.remove(id, purge, actor, (trx, outcome) => {
        audit.note({ purge, was_installed: inst !== undefined, version: inst?.version ?? null, ...outcome });
        audit.writeIn(trx);
      });
    } catch (err) {
      if (err instanceof ServiceBusyError) throw errors.conflict(err.message);
      if (err instanceof HttpError) throw err;
      const why = `removing ${id} failed; POST /api/store/remove again to retry: ${describeError(err)}`;
      throw new HttpError(502, 'remove_failed', why);
    }
    return { ok: true, removed: inst !== undefined, purged: purge, job: job ? presentJob(job) : null };
  }

  /**
   * GET /api/store: the catalog as verified now, what is installed, the engine and the trust keys
   * by name. A refusal met while reading is audited too (once per distinct refusal), as `actor`.
   */
  async describe(actor: string, ip: string | null): Promise<Record<string, unknown>> {
    const { catalog, installations, jobs } = await this.view();
    const engine = await this.engine();
    const accepted = await this.catalog.highestAccepted();
    if (!catalog.ok) await this.catalog.auditReadRefusal(catalog.refusal, actor, ip);
    else
      for (const s of catalog.services)
        if (s.refusal) await this.catalog.auditReadRefusal(s.refusal, actor, ip, s.entry.id);
    const keyNames = new Map((await listTrustKeys(this.d.db)).map((k) => [k.fingerprint, k.name]));
    const highest = accepted?.version ?? null;
    const body = presentStore(catalog, installations, jobs, engine, this.imageVerification, highest, keyNames);
    return { ...body, engine: { ...body.engine, cell_id: this.cellId } };
  }

  /** GET /api/store: the verified catalog (or why it is refused) and what is installed. */
  async view(): Promise<{ catalog: CatalogView; installations: Installation[]; jobs: Map<string, JobRow> }> {
    const [catalog, installations, jobs] = await Promise.all([
      this.catalog.read(),
      listInstallations(this.d.db),
      latestJobs(this.d.db),
    ]);
    return { catalog, installations, jobs };
  }
}
