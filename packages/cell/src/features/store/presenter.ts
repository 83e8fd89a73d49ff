import type { ServiceManifest } from '@pic/manifest';
import type { CatalogView, Refusal } from './catalog.js';
import type { EngineState } from './engine.js';
import type { Installation, JobRow } from './queries.js';

/** A job as the API shows it: states and the error, never what it created or any secret. */
export function presentJob(job: JobRow) {
  return {
    id: job.id,
    service: job.service_id,
    kind: job.kind,
    state: job.state,
    version: job.version,
    purge: job.purge === 1,
    error: job.error,
    error_code: job.error_code,
    progress: job.progress ? (JSON.parse(job.progress) as unknown) : null,
    actor: job.actor,
    created_at: job.created_at,
    updated_at: job.updated_at,
    finished_at: job.finished_at,
  };
}

export function presentRefusal(r: Refusal) {
  return { code: r.code, reason: r.reason, details: r.details };
}

function describeManifest(m: ServiceManifest) {
  return {
    id: m.id,
    name: m.name,
    version: m.version,
    description: m.description,
    subdomain: m.subdomain,
    capabilities: m.capabilities,
    containers: m.containers.map((c) => ({ name: c.name, image: c.image, signed: c.signature !== undefined })),
    routes: (m.routes ?? []).map((r) => ({
      method: r.method,
      path: `/api/${m.id}${r.path}`,
      description: r.description,
    })),
  };
}

export function presentInstallation(inst: Installation) {
  return {
    id: inst.id,
    name: inst.manifest.name,
    version: inst.version,
    state: inst.state,
    subdomain: inst.manifest.subdomain,
    capabilities: inst.manifest.capabilities,
    manifest_digest: inst.manifestDigest,
    index_version: inst.indexVersion,
    installed_at: inst.installedAt,
  };
}

/** GET /api/store: every catalog service with its installed state, plus installed services the catalog no longer lists. */
export function presentStore(
  catalog: CatalogView,
  installations: Installation[],
  jobs: Map<string, JobRow>,
  engine: EngineState,
  imageVerification: string,
  highestAccepted: number | null,
  /** Names of the trusted keys by fingerprint: the catalog's signer is shown by name too. */
  keyNames: ReadonlyMap<string, string> = new Map(),
) {
  const installed = new Map(installations.map((i) => [i.id, i]));
  const stateOf = (id: string) => {
    const inst = installed.get(id);
    const job = jobs.get(id);
    return {
      installed: inst?.state === 'installed',
      state: inst?.state ?? 'available',
      installed_version: inst?.version ?? null,
      job: job ? presentJob(job) : null,
    };
  };
  const services: Array<Record<string, unknown>> = [];
  const listed = new Set<string>();
  if (catalog.ok) {
    for (const s of catalog.services) {
      listed.add(s.entry.id);
      const st = stateOf(s.entry.id);
      if (s.manifest) {
        services.push({
          ...describeManifest(s.manifest),
          verified: true,
          ...st,
          update_available: st.installed_version !== null && st.installed_version !== s.manifest.version,
        });
      } else {
        services.push({
          id: s.entry.id,
          version: s.entry.version,
          verified: false,
          refusal: presentRefusal(s.refusal!),
          ...st,
        });
      }
    }
  }
  for (const inst of installations) {
    if (listed.has(inst.id)) continue;
    services.push({ ...describeManifest(inst.manifest), verified: false, in_catalog: false, ...stateOf(inst.id) });
  }
  return {
    ok: true,
    catalog: catalog.ok
      ? {
          verified: true,
          version: catalog.index.index.version,
          expires: catalog.index.index.expires,
          digest: catalog.index.digest,
          signed_by: catalog.index.signedBy,
          signed_by_key: keyNames.get(catalog.index.signedBy) ?? null,
          highest_accepted_version: highestAccepted,
        }
      : { verified: false, refusal: presentRefusal(catalog.refusal), highest_accepted_version: highestAccepted },
    image_verification: imageVerification,
    engine: engine.reachable
      ? { reachable: true, endpoint: engine.endpoint, version: engine.version }
      : { reachable: false, endpoint: engine.endpoint, reason: engine.reason },
    services,
  };
}
