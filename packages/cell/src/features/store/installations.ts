import type { Kysely, Selectable } from 'kysely';
import type { ServiceManifest } from '@pic/manifest';
import type { Database, ServiceInstallationsTable, ServiceJobsTable } from '../../db/schema.js';
import { errors } from '../../http/errors.js';

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
  const row = await db.selectFrom('service_installations').selectAll().where('service_id', '=', id).executeTakeFirst();
  return row && toInstallation(row);
}

export async function listInstallations(db: Kysely<Database>): Promise<Installation[]> {
  return (await db.selectFrom('service_installations').selectAll().orderBy('service_id').execute()).map(toInstallation);
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
  return db.selectFrom('service_jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The newest job of each service. */
export async function latestJobs(db: Kysely<Database>): Promise<Map<string, JobRow>> {
  const rows = await db
    .selectFrom('service_jobs')
    .selectAll()
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
