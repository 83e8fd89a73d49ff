import type { Insertable, Kysely, Selectable, Transaction, Updateable } from 'kysely';
import type { ServiceManifest } from '@pic/manifest';
import type { Database, ServiceInstallationsTable, ServiceJobsTable } from '../../db/schema.js';
import { errors } from '../../http/errors.js';

/**
 * The store's queries: installations and their install/remove jobs. Every function takes the
 * executor (`db`, or `trx` inside a transaction). Neither table holds a secret (a service's
 * secrets are vault secrets, named by the manifest); the column lists still name what is read,
 * so a column added later leaves this module only once it is listed here.
 */
const INSTALLATION_COLUMNS = [
  'service_id',
  'version',
  'manifest',
  'manifest_digest',
  'index_version',
  'state',
  'job_id',
  'installed_at',
  'created_at',
  'updated_at',
] as const;

const JOB_COLUMNS = [
  'id',
  'service_id',
  'kind',
  'state',
  'version',
  'actor',
  'error',
  'resources',
  'purge',
  'created_at',
  'updated_at',
  'finished_at',
  'progress',
  'error_code',
] as const;

export type InstallationRow = Selectable<ServiceInstallationsTable>;
export type JobRow = Selectable<ServiceJobsTable>;

export interface Installation {
  id: string;
  version: string;
  /** The manifest as verified at install time. */
  manifest: ServiceManifest;
  manifestDigest: string;
  indexVersion: number;
  state: InstallationRow['state'];
  jobId: number | null;
  installedAt: string | null;
  createdAt: string;
}

/** What a job created, in order, so it can be undone. */
export type Resource =
  | { kind: 'container'; name: string }
  | { kind: 'network'; name: string }
  | { kind: 'volume'; name: string }
  | { kind: 'secret'; name: string };

export function toInstallation(row: InstallationRow): Installation {
  return {
    id: row.service_id,
    version: row.version,
    manifest: JSON.parse(row.manifest) as ServiceManifest,
    manifestDigest: row.manifest_digest,
    indexVersion: row.index_version,
    state: row.state,
    jobId: row.job_id,
    installedAt: row.installed_at,
    createdAt: row.created_at,
  };
}

export async function findInstallation(db: Kysely<Database>, id: string): Promise<Installation | undefined> {
  const row = await db
    .selectFrom('service_installations')
    .select(INSTALLATION_COLUMNS)
    .where('service_id', '=', id)
    .executeTakeFirst();
  return row && toInstallation(row);
}

export async function listInstallations(db: Kysely<Database>): Promise<Installation[]> {
  const rows = await db
    .selectFrom('service_installations')
    .select(INSTALLATION_COLUMNS)
    .orderBy('service_id')
    .execute();
  return rows.map(toInstallation);
}

/** The installed (or half-installed) service that publishes `port` on the host, if any. */
export async function hostPortOwner(db: Kysely<Database>, port: number): Promise<string | undefined> {
  const owner = (await listInstallations(db)).find((i) =>
    i.manifest.containers.some((c) => (c.ports ?? []).some((p) => p.host === port)),
  );
  return owner?.id;
}

/** The installation, which must be fully installed: 404 otherwise (the service's API does not exist). */
export async function requireInstalled(db: Kysely<Database>, id: string): Promise<Installation> {
  const inst = await findInstallation(db, id);
  if (inst?.state !== 'installed') throw errors.notFound(`service "${id}" is not installed`);
  return inst;
}

export async function findJob(db: Kysely<Database>, id: number): Promise<JobRow | undefined> {
  return db.selectFrom('service_jobs').select(JOB_COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** The newest job of each service. */
export async function latestJobs(db: Kysely<Database>): Promise<Map<string, JobRow>> {
  const rows = await db
    .selectFrom('service_jobs')
    .select(JOB_COLUMNS)
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('service_jobs')
        .select((e) => e.fn.max('id').as('id'))
        .groupBy('service_id'),
    )
    .execute();
  return new Map(rows.map((r) => [r.service_id, r]));
}

export const TERMINAL_JOB_STATES: ReadonlySet<JobRow['state']> = new Set(['healthy', 'removed', 'failed']);

/** Jobs a process left unfinished (it died), oldest first. */
export function listUnfinishedJobs(db: Kysely<Database>): Promise<JobRow[]> {
  return db
    .selectFrom('service_jobs')
    .select(JOB_COLUMNS)
    .where('state', 'not in', [...TERMINAL_JOB_STATES])
    .orderBy('id')
    .execute();
}

/** Whether any job is unfinished, without reading it. */
export async function hasUnfinishedJob(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectFrom('service_jobs')
    .select('id')
    .where('state', 'not in', [...TERMINAL_JOB_STATES])
    .executeTakeFirst();
  return row !== undefined;
}

export function insertJob(trx: Transaction<Database>, values: Insertable<ServiceJobsTable>): Promise<JobRow> {
  return trx.insertInto('service_jobs').values(values).returning(JOB_COLUMNS).executeTakeFirstOrThrow();
}

export async function updateJob(
  executor: Kysely<Database>,
  id: number,
  patch: Updateable<ServiceJobsTable>,
): Promise<void> {
  await executor.updateTable('service_jobs').set(patch).where('id', '=', id).execute();
}

/** Sets a job's end state; returns the job as it is now. */
export function finishJob(
  trx: Transaction<Database>,
  id: number,
  patch: Updateable<ServiceJobsTable>,
): Promise<JobRow> {
  return trx
    .updateTable('service_jobs')
    .set(patch)
    .where('id', '=', id)
    .returning(JOB_COLUMNS)
    .executeTakeFirstOrThrow();
}

export async function insertInstallation(
  executor: Kysely<Database>,
  values: Insertable<ServiceInstallationsTable>,
): Promise<void> {
  await executor.insertInto('service_installations').values(values).execute();
}

export async function updateInstallation(
  trx: Transaction<Database>,
  id: string,
  patch: Updateable<ServiceInstallationsTable>,
): Promise<void> {
  await trx.updateTable('service_installations').set(patch).where('service_id', '=', id).execute();
}

/** Forgets an installation; with `installingBy`, only while that install job still holds it. */
export async function deleteInstallation(trx: Transaction<Database>, id: string, installingBy?: number): Promise<void> {
  let q = trx.deleteFrom('service_installations').where('service_id', '=', id);
  if (installingBy !== undefined) q = q.where('job_id', '=', installingBy).where('state', '=', 'installing');
  await q.execute();
}
