// Shared by the store's and services' unit tests (not used by the cell): a throwaway database with
// vault and audit log, a signed test catalog on disk, and an in-memory ContainerRuntime double.
// The double exists ONLY for unit tests of the cell's own logic (rollback, recovery, mounting);
// everything that talks to an engine is tested end to end on the real one (test/e2e/store.test.ts).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { manifestDigest, signIndex, type CatalogIndex, type ServiceManifest } from '@pic/manifest';
import type {
  ContainerFile,
  ContainerInfo,
  ContainerRuntime,
  ContainerSpec,
  EngineVersion,
  ExecOptions,
  ExecResult,
  ImageInfo,
  ListFilter,
  NetworkInfo,
  PullOptions,
  NetworkSpec,
  VolumeInfo,
  VolumeSpec,
} from '@pic/runtime';
import { ImageMissingError, NameConflictError, NotFoundError, EngineUnreachableError } from '@pic/runtime';
import type { CellDatabase } from '../../db/database.js';
import { openTempDatabase } from '../../db/temp-database.test-support.js';
import { silentLogger } from '../../lib/logger.js';
import { AuditLog } from '../audit/service.js';
import { openVault, type Vault } from '../vault/vault.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { nowIso } from '../../lib/tokens.js';
import type { EngineDeps } from './installer.js';
import { insertInstallation } from './queries.js';

export interface TestCell {
  dir: string;
  database: CellDatabase;
  vault: Vault;
  audit: AuditLog;
  close(): Promise<void>;
}

export async function openTestCell(): Promise<TestCell> {
  const { dir, database, remove } = await openTempDatabase('pic-store-unit-');
  const vault = await openVault({ dataDir: dir, db: database.db, logger: silentLogger });
  const audit = new AuditLog(database.db, database.sqlite);
  return { dir, database, vault, audit, close: remove };
}

export const IMAGE_ID = `sha256:${'1'.repeat(64)}`;

/** What the installer and the accounts need, from a test cell and a fake engine. */
export function engineDeps(cell: TestCell, runtime: FakeRuntime): EngineDeps {
  return {
    db: cell.database.db,
    vault: cell.vault,
    audit: cell.audit,
    logger: silentLogger,
    runtime,
    cellId: runtime.cellId,
  };
}

/** Records an installation of `manifest` in `state` directly (no job), as a test's starting point. */
export async function seedInstallation(
  db: Kysely<Database>,
  manifest: ServiceManifest,
  state: 'installed' | 'removing',
): Promise<void> {
  const now = nowIso();
  const row = { version: manifest.version, manifest: JSON.stringify(manifest), manifest_digest: 'x', index_version: 1 };
  await insertInstallation(db, {
    service_id: manifest.id,
    ...row,
    state,
    job_id: null,
    installed_at: now,
    created_at: now,
    updated_at: now,
  });
}

/** A small valid manifest with two containers, an exec health check, a secret and a volume. */
export function demoManifest(id = 'demo'): ServiceManifest {
  return {
    id,
    name: 'Demo',
    version: '1.0.0',
    description: 'A service for unit tests.',
    subdomain: id,
    capabilities: ['http'],
    secrets: [{ name: 'token', description: 'A token', length: 24 }],
    containers: [
      {
        name: 'app',
        image: `pic-demo:1@${IMAGE_ID}`,
        env: { DEMO_TOKEN: '{{secret:token}}', DEMO_HOST: '{{subdomain}}.{{domain}}' },
        volumes: [{ name: 'data', path: '/data' }],
        ports: [{ container: 8080, protocol: 'tcp' }],
        healthcheck: { exec: ['true'], intervalSeconds: 1, timeoutSeconds: 1, retries: 1 },
      },
      {
        name: 'worker',
        image: `pic-demo:1@${IMAGE_ID}`,
        healthcheck: { exec: ['true'], intervalSeconds: 1, timeoutSeconds: 1, retries: 1 },
      },
    ],
    routes: [
      {
        method: 'GET',
        path: '/items',
        handler: 'proxy',
        description: 'Items',
        proxy: { container: 'app', port: 8080, path: '/items' },
      },
    ],
  };
}

export interface TestCatalog {
  version: number;
  key: KeyObject;
  manifests: ServiceManifest[];
  expires?: string;
  /** Write these bytes instead of a manifest's JSON (after signing). */
  override?: Record<string, string>;
  /** Do not write the bundle. */
  unsigned?: boolean;
  /** Change the index file after signing. */
  tamperIndex?: (index: CatalogIndex) => void;
}

/** Writes a catalog root (manifests/ + services-index/) signed with `key`. */
export async function writeTestCatalog(root: string, c: TestCatalog): Promise<void> {
  mkdirSync(join(root, 'manifests'), { recursive: true });
  mkdirSync(join(root, 'services-index'), { recursive: true });
  const index = {
    version: c.version,
    expires: c.expires ?? new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    services: c.manifests.map((m) => ({
      id: m.id,
      version: m.version,
      manifest: `manifests/${m.id}.yaml`,
      digest: manifestDigest(m),
    })),
  };
  const signed = await signIndex(index, c.key);
  for (const m of c.manifests)
    writeFileSync(join(root, 'manifests', `${m.id}.yaml`), c.override?.[m.id] ?? JSON.stringify(m));
  const written = structuredClone(index);
  c.tamperIndex?.(written);
  writeFileSync(join(root, 'services-index', 'index.json'), JSON.stringify(written));
  rmSync(join(root, 'services-index', 'index.sig.json'), { force: true });
  if (!c.unsigned) writeFileSync(join(root, 'services-index', 'index.sig.json'), JSON.stringify(signed.bundle));
}

type Failure = (arg: string) => Error | undefined;

/**
 * An in-memory ContainerRuntime for unit tests of the installer's bookkeeping. It keeps the
 * runtime's contract where the installer depends on it (names unique, missingOk, labels by
 * service, idempotent networks and volumes) and can be told to fail any call.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly cellId = 'c0ffee000000';
  readonly endpoint = 'unix:///fake.sock';
  reachable = true;
  images = new Map<string, string>(); // ref → digest
  /** What a registry would serve: digest reference → the image ID a pull of it gives. */
  registry = new Map<string, string>();
  /** Pulled references (the RepoDigests the engine then reports). */
  repoDigests = new Map<string, string>(); // digest ref → image ID
  containers = new Map<string, ContainerInfo & { spec: ContainerSpec }>();
  networks = new Map<string, string>(); // name → service
  volumes = new Map<string, string>(); // name → service
  failures: Partial<Record<keyof ContainerRuntime, Failure>> = {};
  calls: string[] = [];
  execs: Array<{ container: string; argv: readonly string[]; stdin?: string }> = [];
  execResult: (container: string, argv: readonly string[]) => ExecResult = () => ({
    exitCode: 0,
    stdout: '',
    stderr: '',
  });

  private check(op: keyof ContainerRuntime, arg = ''): void {
    this.calls.push(`${op} ${arg}`.trim());
    if (!this.reachable) throw new EngineUnreachableError(this.endpoint, 'fake engine is down');
    const err = this.failures[op]?.(arg);
    if (err) throw err;
  }

  async ping(): Promise<void> {
    this.check('ping');
  }
  async version(): Promise<EngineVersion> {
    this.check('version');
    return { version: 'fake', apiVersion: '1.47', os: 'linux', arch: 'amd64' };
  }
  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    this.check('inspectImage', ref);
    const pulled = this.repoDigests.get(ref);
    if (pulled) return { digest: pulled, repoTags: [], repoDigests: [ref], created: '', sizeBytes: 1, labels: {} };
    const digest = this.images.get(ref) ?? ([...this.images.values()].includes(ref) ? ref : undefined);
    return digest ? { digest, repoTags: [ref], repoDigests: [], created: '', sizeBytes: 1, labels: {} } : undefined;
  }
  async imageDigest(ref: string): Promise<string> {
    const info = await this.inspectImage(ref);
    if (!info) throw new ImageMissingError(ref);
    return info.digest;
  }
  async ensureImage(ref: string): Promise<ImageInfo> {
    const info = await this.inspectImage(ref);
    if (!info) throw new ImageMissingError(ref);
    return info;
  }
  async pullImage(ref: string, options: PullOptions = {}): Promise<ImageInfo> {
    this.check('pullImage', ref);
    const id = this.registry.get(ref);
    if (!id) throw new ImageMissingError(ref, 'not in the fake registry');
    options.onProgress?.({ layers: 1, layersDone: 0, bytesDone: 50, bytesTotal: 100, status: 'Downloading' });
    options.onProgress?.({ layers: 1, layersDone: 1, bytesDone: 100, bytesTotal: 100, status: 'Pull complete' });
    this.repoDigests.set(ref, id);
    return (await this.inspectImage(ref))!;
  }
  async createContainer(spec: ContainerSpec): Promise<ContainerInfo> {
    this.check('createContainer', spec.name);
    if (this.containers.has(spec.name)) throw new NameConflictError('container', spec.name);
    for (const v of spec.volumes ?? []) if (!this.volumes.has(v.volume)) this.volumes.set(v.volume, spec.service);
    const info: ContainerInfo & { spec: ContainerSpec } = {
      id: `id-${spec.name}`,
      name: spec.name,
      cellId: this.cellId,
      service: spec.service,
      image: spec.image,
      imageDigest: this.images.get(spec.image) ?? this.repoDigests.get(spec.image) ?? spec.image,
      state: 'created',
      running: false,
      exitCode: undefined,
      health: undefined,
      ports: [],
      labels: { ...spec.labels },
      createdAt: new Date().toISOString(),
      startedAt: undefined,
      spec,
    };
    this.containers.set(spec.name, info);
    return info;
  }
  private find(idOrName: string) {
    const c = this.containers.get(idOrName) ?? [...this.containers.values()].find((x) => x.id === idOrName);
    if (!c) throw new NotFoundError('container', idOrName);
    return c;
  }
  async startContainer(idOrName: string): Promise<void> {
    this.check('startContainer', idOrName);
    const c = this.find(idOrName);
    Object.assign(c, {
      state: 'running',
      running: true,
      health: c.spec.healthcheck ? 'healthy' : undefined,
      startedAt: new Date().toISOString(),
    });
  }
  async stopContainer(idOrName: string): Promise<void> {
    this.check('stopContainer', idOrName);
    Object.assign(this.find(idOrName), { state: 'exited', running: false, exitCode: 0 });
  }
  async restartContainer(idOrName: string): Promise<void> {
    this.check('restartContainer', idOrName);
    Object.assign(this.find(idOrName), { state: 'running', running: true });
  }
  async removeContainer(idOrName: string, options: { force?: boolean; missingOk?: boolean } = {}): Promise<void> {
    this.check('removeContainer', idOrName);
    const c = this.containers.get(idOrName) ?? [...this.containers.values()].find((x) => x.id === idOrName);
    if (!c) {
      if (options.missingOk) return;
      throw new NotFoundError('container', idOrName);
    }
    this.containers.delete(c.name);
  }
  async inspectContainer(idOrName: string): Promise<ContainerInfo> {
    this.check('inspectContainer', idOrName);
    return { ...this.find(idOrName) };
  }
  async listContainers(filter: ListFilter = {}): Promise<ContainerInfo[]> {
    this.check('listContainers', filter.service);
    return [...this.containers.values()].filter((c) => !filter.service || c.service === filter.service);
  }
  async logs(): Promise<{ stdout: string; stderr: string }> {
    return { stdout: '', stderr: '' };
  }
  puts: Array<{ container: string; dir: string; files: readonly ContainerFile[] }> = [];
  async putFiles(idOrName: string, dir: string, files: readonly ContainerFile[]): Promise<void> {
    this.check('putFiles', idOrName);
    this.find(idOrName);
    this.puts.push({ container: idOrName, dir, files });
  }
  async exec(idOrName: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.check('exec', idOrName);
    this.find(idOrName);
    this.execs.push({
      container: idOrName,
      argv,
      ...(options.stdin !== undefined ? { stdin: String(options.stdin) } : {}),
    });
    return this.execResult(idOrName, argv);
  }
  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    this.check('createNetwork', spec.name);
    const created = !this.networks.has(spec.name);
    this.networks.set(spec.name, spec.service);
    return {
      id: spec.name,
      name: spec.name,
      cellId: this.cellId,
      service: spec.service,
      internal: false,
      labels: {},
      created,
    };
  }
  async removeNetwork(name: string, options: { missingOk?: boolean } = {}): Promise<void> {
    this.check('removeNetwork', name);
    if (!this.networks.delete(name) && !options.missingOk) throw new NotFoundError('network', name);
  }
  async listNetworks(filter: ListFilter = {}): Promise<NetworkInfo[]> {
    this.check('listNetworks', filter.service);
    return [...this.networks]
      .filter(([, s]) => !filter.service || s === filter.service)
      .map(([name, service]) => ({
        id: name,
        name,
        cellId: this.cellId,
        service,
        internal: false,
        labels: {},
        created: false,
      }));
  }
  async createVolume(spec: VolumeSpec): Promise<VolumeInfo> {
    this.check('createVolume', spec.name);
    const created = !this.volumes.has(spec.name);
    this.volumes.set(spec.name, spec.service);
    return {
      name: spec.name,
      cellId: this.cellId,
      service: spec.service,
      mountpoint: `/fake/${spec.name}`,
      labels: {},
      created,
    };
  }
  async removeVolume(name: string, options: { missingOk?: boolean } = {}): Promise<void> {
    this.check('removeVolume', name);
    if (!this.volumes.delete(name) && !options.missingOk) throw new NotFoundError('volume', name);
  }
  async listVolumes(filter: ListFilter = {}): Promise<VolumeInfo[]> {
    this.check('listVolumes', filter.service);
    return [...this.volumes]
      .filter(([, s]) => !filter.service || s === filter.service)
      .map(([name, service]) => ({
        name,
        cellId: this.cellId,
        service,
        mountpoint: `/fake/${name}`,
        labels: {},
        created: false,
      }));
  }
}
