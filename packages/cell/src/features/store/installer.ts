import type { Transaction } from 'kysely';
import type { ServiceManifest } from '@pic/manifest';
import type { ContainerRuntime } from '@pic/runtime';
import type { Database } from '../../db/schema.js';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import { errors } from '../../http/errors.js';
import type { AuditLog } from '../audit/service.js';
import type { Vault } from '../vault/vault.js';
import { describeError, isRuntimeError, objectNames } from './engine.js';
import { waitHealthy } from './health.js';
import type { ImagePlan } from './images.js';
import {
  deleteInstallation,
  findInstallation,
  findJob,
  finishJob,
  insertInstallation,
  insertJob,
  listUnfinishedJobs,
  updateInstallation,
  updateJob,
  type JobRow,
  type Resource,
} from './queries.js';
import { containerSpec, generateSecret, manifestVolumes, serviceSecretName, serviceSecrets } from './specs.js';
import { readCellSettings } from '../config/service.js';
import { manifestLib } from './manifest-lib.js';
import { ServiceTls } from './tls.js';

/** What the installer and the accounts work with: the database, vault, audit log and the container engine. */
export interface EngineDeps {
  db: Db;
  vault: Vault;
  audit: AuditLog;
  logger: Logger;
  runtime: ContainerRuntime;
  cellId: string;
}

export interface InstallerDeps extends EngineDeps {
  /** Called once a service is healthy and recorded as installed (mount its routes, retry account deletions). */
  onInstalled?: (id: string, manifest: ServiceManifest) => Promise<void> | void;
  /** Called before a removal touches the engine (unmount its routes). */
  onRemoving?: (id: string) => Promise<void> | void;
  /** Called when a purge deletes the service's data, inside the final transaction (accounts, their passwords). */
  onPurge?: (trx: Transaction<Database>, id: string) => Promise<void>;
  /** How often the health wait polls (tests shorten it). */
  healthPollMs?: number;
  /** The host addresses ports with `host` are published on, asked at each install (default 127.0.0.1). */
  publishAddresses?: () => Promise<string[]>;
  /**
   * Once the containers are healthy: why the service still is not (its account contract does not
   * answer), or null. Asked until it says null or CONTRACT_WAIT_MS pass; then the install fails.
   */
  contractProblem?: (id: string, manifest: ServiceManifest) => Promise<string | null>;
}

/** How long an install waits for a service's account contract to answer once its containers are healthy. */
export const CONTRACT_WAIT_MS = 10_000;

export interface InstallRequest {
  id: string;
  manifest: ServiceManifest;
  manifestDigest: string;
  indexVersion: number;
  plans: ImagePlan[];
  actor: string;
}

/** How often pull progress is written to the job row at most. */
const PROGRESS_EVERY_MS = 250;

/** The job row's `progress`: one entry per image the job pulls. */
export interface JobProgress {
  images: Array<{
    /** `registry/repository@sha256:…` */
    ref: string;
    containers: string[];
    state: 'waiting' | 'pulling' | 'pulled';
    layers: number;
    layers_done: number;
    bytes_done: number;
    bytes_total: number;
  }>;
}

/** A failure of an install job with its stable snake_case code (the job's error_code). */
export class InstallError extends Error {
  override readonly name = 'InstallError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The job's error_code for what ended it: the pull's own words (registry_unreachable,
 * image_not_in_registry, image_digest_mismatch, image_pull_failed), the engine's, or install_failed.
 */
export function installErrorCode(err: unknown): string {
  if (err instanceof InstallError) return err.code;
  if (isRuntimeError(err)) {
    if (err.code === 'image_pull_failed') {
      const reason = (err as { reason?: string }).reason;
      if (reason === 'verification_failed') return 'image_digest_mismatch';
      return reason === 'not_found' ? 'image_not_in_registry' : 'image_pull_failed';
    }
    const own = ['registry_unreachable', 'image_digest_mismatch', 'image_missing', 'engine_unreachable'];
    if (own.includes(err.code)) return err.code;
  }
  return 'install_failed';
}

/** A job already in flight for this service: install and remove are one at a time per service. */
export class ServiceBusyError extends Error {
  override readonly name = 'ServiceBusyError';
  constructor(
    readonly job: JobRow | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Install and remove jobs (ADR 003). An install runs verifying → pulling (a missing image is pulled
 * by digest from its registry and checked; one the engine has is checked again) → creating →
 * starting → healthy, or ends failed; every object it creates
 * is written to the job row *before* it is created, so a failure, or a crash found at the next
 * start, removes exactly what this job made and leaves the cell as it was. Both are idempotent:
 * installing an installed service, or removing an absent one, changes nothing.
 */
export class Installer {
  /** Jobs running in this process, by service. */
  private readonly running = new Map<string, Promise<JobRow>>();
  private readonly tls: ServiceTls;

  constructor(private readonly d: InstallerDeps) {
    this.tls = new ServiceTls(d.db, d.vault, d.logger);
  }

  isBusy(id: string): boolean {
    return this.running.has(id);
  }

  /** The promise of the job running for a service, if any. */
  inFlight(id: string): Promise<JobRow> | undefined {
    return this.running.get(id);
  }

  /** Waits (at most `ms`) for running jobs, so a clean stop rarely leaves one to recover. */
  async drain(ms: number): Promise<void> {
    const jobs = [...this.running.values()];
    if (jobs.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(jobs), new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  // ------------------------------------------------------------------ install

  /**
   * Records the job and the installation (state installing) in the caller's transaction; the job
   * itself runs with `run()` once that transaction has committed.
   */
  async begin(trx: Transaction<Database>, req: InstallRequest): Promise<JobRow> {
    // Two requests verified at the same time: the first one's transaction wins, the second is told.
    const existing = await findInstallation(trx, req.id);
    if (existing) throw errors.conflict(`${req.id} is ${existing.state} already (job ${existing.jobId ?? '?'})`);
    const now = nowIso();
    const job = await insertJob(trx, {
      service_id: req.id,
      kind: 'install',
      state: 'verifying',
      version: req.manifest.version,
      actor: req.actor,
      created_at: now,
      updated_at: now,
    });
    await insertInstallation(trx, {
      service_id: req.id,
      version: req.manifest.version,
      manifest: JSON.stringify(req.manifest),
      manifest_digest: req.manifestDigest,
      index_version: req.indexVersion,
      state: 'installing',
      job_id: job.id,
      installed_at: null,
      created_at: now,
      updated_at: now,
    });
    return job;
  }

  /** Runs a begun install job to its end (healthy or failed, rolled back). Never rejects. */
  run(job: JobRow, req: InstallRequest): Promise<JobRow> {
    const existing = this.running.get(req.id);
    if (existing) return existing;
    const p = this.execute(job, req)
      .catch((err: unknown) => {
        // Only when even recording the failure failed (e.g. the cell is stopping): the next start rolls it back.
        this.d.logger.error('install job could not finish; it is recovered at the next start', {
          service: req.id,
          job: job.id,
          error: describeError(err),
        });
        return job;
      })
      .finally(() => this.running.delete(req.id));
    this.running.set(req.id, p);
    return p;
  }

  private async execute(job: JobRow, req: InstallRequest): Promise<JobRow> {
    const { runtime, cellId, vault, db } = this.d;
    const { manifest } = req;
    const names = objectNames(cellId, req.id);
    const resources: Resource[] = [];
    const record = async (r: Resource) => {
      resources.push(r);
      await updateJob(db, job.id, { resources: JSON.stringify(resources), updated_at: nowIso() });
    };
    const step = (state: JobRow['state']) => updateJob(db, job.id, { state, updated_at: nowIso() });
    try {
      await step('pulling');
      await this.pullImages(job, req.plans);
      const images = new Map(req.plans.map((p) => [p.container, p]));
      for (const c of manifest.containers) {
        const plan = images.get(c.name);
        if (!plan) throw new Error(`no image plan for container "${c.name}"`);
        // Checked when the job was accepted (or pulled and checked just now): make sure it is still there.
        await runtime.ensureImage(plan.image);
      }

      // Secrets are made once and kept across reinstalls (the service's data was made with them).
      for (const s of manifest.secrets ?? []) {
        const name = serviceSecretName(req.id, s.name);
        if ((await vault.get(name)) !== undefined) continue;
        await record({ kind: 'secret', name });
        await vault.put(name, generateSecret(s.length));
      }

      await step('creating');
      // A crash between creating a container and recording it would leave one behind: clear any.
      for (const c of await runtime.listContainers({ service: req.id }))
        await runtime.removeContainer(c.id, { force: true, missingOk: true });
      const networks = new Set((await runtime.listNetworks({ service: req.id })).map((n) => n.name));
      if (!networks.has(names.network)) await record({ kind: 'network', name: names.network });
      await runtime.createNetwork({ name: names.network, service: req.id });
      const volumes = new Set((await runtime.listVolumes({ service: req.id })).map((v) => v.name));
      for (const v of manifestVolumes(manifest)) {
        const name = names.volume(v);
        // Volumes kept from an earlier install hold the service's data: never part of a rollback.
        if (!volumes.has(name)) await record({ kind: 'volume', name });
        await runtime.createVolume({ name, service: req.id });
      }
      const { identity } = await readCellSettings(db);
      const values = {
        domain: identity.domain,
        subdomain: manifest.subdomain,
        secrets: await serviceSecrets(vault, db, manifest),
      };
      const { renderTemplate } = await manifestLib();
      const addresses = this.d.publishAddresses ? await this.d.publishAddresses() : undefined;
      for (const c of manifest.containers) {
        const image = images.get(c.name)!.image;
        const spec = containerSpec(cellId, manifest, c, image, values, renderTemplate, addresses);
        await record({ kind: 'container', name: spec.name });
        await runtime.createContainer(spec);
      }
      // TLS from the cell's CA, written into the created containers before they start.
      for (const [name, { dir, files }] of await this.tls.filesFor(manifest, identity.domain)) {
        await runtime.putFiles(names.container(name), dir, files);
      }

      await step('starting');
      for (const c of manifest.containers) await runtime.startContainer(names.container(c.name));
      await waitHealthy(runtime, cellId, manifest, this.d.healthPollMs);
      // healthy containers are not yet a healthy service: its account contract must answer too
      if (this.d.contractProblem) {
        const deadline = Date.now() + CONTRACT_WAIT_MS;
        for (;;) {
          const problem = await this.d.contractProblem(req.id, manifest);
          if (!problem) break;
          if (Date.now() > deadline) throw new Error(problem);
          await new Promise((resolve) => setTimeout(resolve, this.d.healthPollMs ?? 500));
        }
      }

      const done = await db.transaction().execute(async (trx) => {
        const now = nowIso();
        await updateInstallation(trx, req.id, { state: 'installed', installed_at: now, updated_at: now });
        return this.finishJob(trx, job, req, 'ok', { state: 'healthy' }, { version: manifest.version });
      });
      this.d.logger.info('service installed', { service: req.id, version: manifest.version, job: job.id });
      try {
        await this.d.onInstalled?.(req.id, manifest);
      } catch (err) {
        this.d.logger.error('after-install step failed', { service: req.id, error: describeError(err) });
      }
      return done;
    } catch (err) {
      return this.fail(job, req, resources, err);
    }
  }

  /**
   * The pulling step: every image the engine lacked is pulled by digest from the registry its
   * reference names, and checked (its RepoDigests must hold exactly the pinned reference) before
   * anything is created. Progress (layers, bytes) goes to the job row as it comes, at most every
   * PROGRESS_EVERY_MS, and stays there after the step.
   */
  private async pullImages(job: JobRow, plans: readonly ImagePlan[]): Promise<void> {
    const pulls = [...new Set(plans.flatMap((p) => (p.pull ? [p.pull] : [])))];
    if (pulls.length === 0) return;
    const progress: JobProgress = {
      images: pulls.map((ref) => ({
        ref,
        containers: plans.filter((p) => p.pull === ref).map((p) => p.container),
        state: 'waiting',
        layers: 0,
        layers_done: 0,
        bytes_done: 0,
        bytes_total: 0,
      })),
    };
    let written = 0;
    let writing: Promise<unknown> = Promise.resolve();
    const save = (force = false) => {
      if (!force && Date.now() - written < PROGRESS_EVERY_MS) return writing;
      written = Date.now();
      const text = JSON.stringify(progress);
      writing = writing.then(() =>
        updateJob(this.d.db, job.id, { progress: text, updated_at: nowIso() }).catch(() => undefined),
      );
      return writing;
    };
    for (const image of progress.images) {
      image.state = 'pulling';
      await save(true);
      const info = await this.d.runtime.pullImage(image.ref, {
        onProgress: (p) => {
          Object.assign(image, { layers: p.layers, layers_done: p.layersDone });
          Object.assign(image, { bytes_done: p.bytesDone, bytes_total: p.bytesTotal });
          void save();
        },
      });
      if (!info.repoDigests.includes(image.ref)) {
        const has = info.repoDigests.join(', ') || 'no registry digest';
        const why = `the image pulled for ${image.ref} does not carry that digest (it has ${has}): refusing to run it`;
        throw new InstallError('image_digest_mismatch', why);
      }
      image.state = 'pulled';
      await save(true);
      const facts = { image: image.ref, bytes: image.bytes_total, layers: image.layers };
      this.d.logger.info('image pulled', { service: job.service_id, job: job.id, ...facts });
    }
  }

  /** Records the job's end state and audits it, inside the caller's transaction. */
  private async finishJob(
    trx: Transaction<Database>,
    job: JobRow,
    req: Pick<InstallRequest, 'id' | 'actor'>,
    result: 'ok' | 'error',
    end: { state: 'healthy' } | { state: 'failed'; error: string; error_code: string },
    details: Record<string, unknown>,
  ): Promise<JobRow> {
    const now = nowIso();
    const row = await finishJob(trx, job.id, { ...end, updated_at: now, finished_at: now });
    this.d.audit.appendIn(trx, {
      actor: req.actor,
      action: 'store.install.finished',
      targetType: 'service',
      targetId: req.id,
      result,
      details: { job: job.id, ...end, ...details },
    });
    return row;
  }

  /** Undoes what the job created (newest first), records the failure and forgets the installation. */
  private async fail(
    job: JobRow,
    req: Pick<InstallRequest, 'id' | 'actor'>,
    resources: Resource[],
    err: unknown,
  ): Promise<JobRow> {
    const reason = describeError(err);
    const code = installErrorCode(err);
    const facts = { error: reason, code, resources: resources.length };
    this.d.logger.warn('service install failed; rolling back', { service: req.id, job: job.id, ...facts });
    const leftovers = await this.rollback(resources);
    const error = leftovers.length ? `${reason} (rollback left: ${leftovers.join('; ')})` : reason;
    return this.d.db.transaction().execute(async (trx) => {
      await deleteInstallation(trx, req.id, job.id);
      const end = { state: 'failed' as const, error, error_code: code };
      const row = await this.finishJob(trx, job, req, 'error', end, {
        rolled_back: resources.length - leftovers.length,
      });
      return row;
    });
  }

  /** Removes recorded resources, newest first; returns what could not be removed. */
  async rollback(resources: readonly Resource[]): Promise<string[]> {
    const leftovers: string[] = [];
    for (const r of [...resources].reverse()) {
      try {
        if (r.kind === 'container') await this.d.runtime.removeContainer(r.name, { force: true, missingOk: true });
        else if (r.kind === 'network') await this.d.runtime.removeNetwork(r.name, { missingOk: true });
        else if (r.kind === 'volume') await this.d.runtime.removeVolume(r.name, { missingOk: true });
        else await this.d.vault.delete(r.name);
      } catch (err) {
        leftovers.push(`${r.kind} ${r.name}: ${describeError(err)}`);
      }
    }
    return leftovers;
  }

  // ------------------------------------------------------------------ remove

  /**
   * Removes an installed service: routes first, then its containers and network; its volumes,
   * secrets and accounts only with `purge`. Safe to repeat after a failure or a crash (each step
   * tolerates what is already gone). `inTransaction` joins the caller's audit entry to the final
   * commit. Returns the finished job, or undefined when nothing was installed (and nothing purged).
   */
  async remove(
    id: string,
    purge: boolean,
    actor: string,
    inTransaction?: (trx: Transaction<Database>, outcome: { job: number; containers: number; volumes: number }) => void,
  ): Promise<JobRow | undefined> {
    if (this.running.has(id))
      throw new ServiceBusyError(undefined, `a job for ${id} is running; wait for it to finish`);
    const inst = await findInstallation(this.d.db, id);
    if (!inst && !purge) return undefined;
    let resolve!: (row: JobRow) => void;
    const tracker = new Promise<JobRow>((r) => (resolve = r));
    this.running.set(id, tracker);
    try {
      const now = nowIso();
      const job = await this.d.db.transaction().execute(async (trx) => {
        const row = await insertJob(trx, {
          service_id: id,
          kind: 'remove',
          state: 'removing',
          version: inst?.version ?? '',
          actor,
          purge: purge ? 1 : 0,
          created_at: now,
          updated_at: now,
        });
        if (inst) await updateInstallation(trx, id, { state: 'removing', job_id: row.id, updated_at: now });
        return row;
      });
      const finished = await this.executeRemove(job, id, purge, inTransaction);
      resolve(finished);
      return finished;
    } finally {
      this.running.delete(id);
    }
  }

  private async executeRemove(
    job: JobRow,
    id: string,
    purge: boolean,
    inTransaction?: (trx: Transaction<Database>, outcome: { job: number; containers: number; volumes: number }) => void,
  ): Promise<JobRow> {
    const { runtime, db, cellId } = this.d;
    try {
      await this.d.onRemoving?.(id);
      const containers = await runtime.listContainers({ service: id });
      for (const c of containers) {
        if (c.running)
          await runtime.stopContainer(c.id, { timeoutSeconds: 10 }).catch((err) => {
            if (!isRuntimeError(err, 'not_found')) throw err;
          });
        await runtime.removeContainer(c.id, { force: true, missingOk: true });
      }
      await runtime.removeNetwork(objectNames(cellId, id).network, { missingOk: true });
      let volumes = 0;
      if (purge) {
        for (const v of await runtime.listVolumes({ service: id })) {
          await runtime.removeVolume(v.name, { missingOk: true });
          volumes++;
        }
      }
      return await db.transaction().execute(async (trx) => {
        const now = nowIso();
        if (purge) {
          const secrets = await this.d.vault.list(trx, `service/${id}/secret/`);
          for (const s of secrets) await this.d.vault.delete(s.name, trx);
          await this.d.onPurge?.(trx, id);
        }
        await deleteInstallation(trx, id);
        const row = await finishJob(trx, job.id, { state: 'removed', updated_at: now, finished_at: now });
        inTransaction?.(trx, { job: job.id, containers: containers.length, volumes });
        return row;
      });
    } catch (err) {
      const error = describeError(err);
      this.d.logger.warn('service removal failed; it can be retried', { service: id, job: job.id, error });
      const now = nowIso();
      await updateJob(db, job.id, { state: 'failed', error, updated_at: now, finished_at: now });
      throw err;
    }
  }

  // ------------------------------------------------------------------ recovery

  /**
   * At start-up: a job that was not finished belongs to a process that died. An install is rolled
   * back (what it recorded is removed, the installation forgotten); a removal is completed. Needs
   * the engine; when it is unreachable the jobs stay as they are for the next start.
   */
  async recover(): Promise<{ rolledBack: number; removed: number }> {
    const stale = await listUnfinishedJobs(this.d.db);
    let rolledBack = 0;
    let removed = 0;
    for (const job of stale) {
      if (this.running.has(job.service_id)) continue;
      if (job.kind === 'install') {
        const resources = JSON.parse(job.resources) as Resource[];
        const why = `interrupted by a restart of the cell while ${job.state}; rolled back, install again`;
        await this.fail(job, { id: job.service_id, actor: job.actor }, resources, new InstallError('interrupted', why));
        rolledBack++;
      } else {
        // Mark the old job failed, then finish the removal with a fresh one.
        const now = nowIso();
        const error = 'interrupted by a restart of the cell; resumed';
        await updateJob(this.d.db, job.id, { state: 'failed', error, updated_at: now, finished_at: now });
        await this.remove(job.service_id, job.purge === 1, job.actor);
        removed++;
      }
    }
    return { rolledBack, removed };
  }

  async job(id: number): Promise<JobRow | undefined> {
    return findJob(this.d.db, id);
  }
}
