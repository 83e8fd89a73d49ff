/**
 * Helpers for the store's end-to-end tests: a signed test catalog written to a directory (the
 * cell's store.catalog_dir), made with @pic/manifest and a throwaway key exactly as the
 * maintainers' `npm run store:sign` makes the real one, and a view of the engine by label.
 *
 * @pic/manifest and @pic/runtime are loaded from their built packages by path: this test project
 * does not depend on them (see test/support/docker-engine.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { REPO_ROOT, startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';

/** The slice of @pic/manifest these tests use. */
export interface ManifestModule {
  generateStoreKeyPair(): { privateKey: KeyObject; publicKey: KeyObject };
  publicKeyPem(key: KeyObject): string;
  keyFingerprint(key: KeyObject): string;
  parseManifest(text: string, subject?: string): any;
  manifestDigest(manifest: unknown): string;
  signIndex(index: unknown, key: KeyObject): Promise<{ bytes: Buffer; bundle: unknown }>;
  signImage(imageReference: string, key: KeyObject): Promise<unknown>;
}

/** The slice of @pic/runtime's DockerRuntime these tests use. */
export interface EngineView {
  listContainers(filter?: {
    service?: string;
  }): Promise<Array<{ name: string; running: boolean; labels: Record<string, string> }>>;
  listNetworks(filter?: { service?: string }): Promise<Array<{ name: string }>>;
  listVolumes(filter?: { service?: string }): Promise<Array<{ name: string }>>;
  exec(
    name: string,
    argv: string[],
    opts?: { stdin?: string },
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

export async function loadManifestModule(): Promise<ManifestModule> {
  return (await import(
    pathToFileURL(join(REPO_ROOT, 'packages', 'manifest', 'dist', 'index.js')).href
  )) as ManifestModule;
}

/** A runtime bound to the cell's id: it sees exactly the objects that cell created (pic.cell label). */
export async function engineView(socketPath: string, cellId: string): Promise<EngineView> {
  const mod = (await import(pathToFileURL(join(REPO_ROOT, 'packages', 'runtime', 'dist', 'index.js')).href)) as {
    DockerRuntime: new (o: { cellId: string; socket: string }) => EngineView;
  };
  return new mod.DockerRuntime({ cellId, socket: socketPath });
}

/** The tests' own catalog's test-echo manifest (never in the user's catalog). */
export const TEST_ECHO_MANIFEST = join(REPO_ROOT, 'test', 'catalog', 'manifests', 'test-echo.yaml');

export interface CatalogOptions {
  version: number;
  /** Signs the index. */
  key: KeyObject;
  /** The manifest written and listed (a JSON document is valid YAML 1.2). */
  manifest: any;
  /** Default: 30 days from now. */
  expires?: string;
  /** Changes the manifest file after the index was signed (mix-and-match / tampering). */
  tamper?: (manifest: any) => void;
}

/**
 * The tests' test-echo manifest pinned to `pin`: a digest (the locally built image's ID, with the
 * manifest's own name) or a whole reference (`registry/repo:tag@sha256:…`); its image signed with
 * `imageKey` (or unsigned).
 */
export async function testEchoManifest(m: ManifestModule, pin: string, imageKey?: KeyObject): Promise<any> {
  const manifest = m.parseManifest(readFileSync(TEST_ECHO_MANIFEST, 'utf8'), 'manifests/test-echo.yaml');
  const server = manifest.containers[0];
  server.image = pin.includes('@') ? pin : server.image.replace(/@sha256:[0-9a-f]{64}$/, `@${pin}`);
  if (imageKey) server.signature = await m.signImage(server.image, imageKey);
  return manifest;
}

/** Writes <dir>/manifests/test-echo.yaml and <dir>/services-index/{index.json,index.sig.json}. */
export async function writeCatalog(m: ManifestModule, dir: string, opts: CatalogOptions): Promise<void> {
  mkdirSync(join(dir, 'manifests'), { recursive: true });
  mkdirSync(join(dir, 'services-index'), { recursive: true });
  const path = `manifests/${opts.manifest.id}.yaml`;
  const index = {
    version: opts.version,
    expires: opts.expires ?? new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    services: [
      { id: opts.manifest.id, version: opts.manifest.version, manifest: path, digest: m.manifestDigest(opts.manifest) },
    ],
  };
  const signed = await m.signIndex(index, opts.key);
  let written = opts.manifest;
  if (opts.tamper) {
    written = structuredClone(opts.manifest);
    opts.tamper(written);
  }
  writeFileSync(join(dir, path), `${JSON.stringify(written, null, 2)}\n`);
  writeFileSync(join(dir, 'services-index', 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  writeFileSync(join(dir, 'services-index', 'index.sig.json'), `${JSON.stringify(signed.bundle, null, 2)}\n`);
}

/** Asserts that nothing of the cell `view` sees is left in the engine (volumes too, unless told). */
export async function assertEngineEmpty(view: EngineView, why: string, { volumes = true } = {}): Promise<void> {
  assert.deepEqual(
    (await view.listContainers()).map((c) => c.name),
    [],
    `no container after ${why}`,
  );
  assert.deepEqual(
    (await view.listNetworks()).map((n) => n.name),
    [],
    `no network after ${why}`,
  );
  if (volumes)
    assert.deepEqual(
      (await view.listVolumes()).map((v) => v.name),
      [],
      `no volume after ${why}`,
    );
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A cell whose store reads `catalogDir` and drives the engine at `engineSocket`: set up, signed in
 * as the admin, and trusting the catalog's key (as `test-store`).
 */
export async function startStoreCell(
  m: ManifestModule,
  catalogDir: string,
  engineSocket: string,
  storePublicKey: KeyObject,
): Promise<{ cell: CellProcess; api: ApiClient }> {
  const cell = await startCellProcess({
    cellYaml: `store:\n  catalog_dir: ${catalogDir}\n  engine_socket: ${engineSocket}\n`,
    timeoutMs: 30_000,
  });
  const api = new ApiClient(cell.url);
  await completeSetup(api);
  const trusted = await api.post('/api/vault/trust-keys', {
    name: 'test-store',
    public_key: m.publicKeyPem(storePublicKey),
  });
  assert.equal(trusted.status, 201, trusted.text);
  return { cell, api };
}

/** Installs test-echo from the cell's catalog and waits until its job is healthy (fails if the job does). */
export async function installTestEcho(api: ApiClient): Promise<any> {
  const res = await api.post('/api/store/install', { id: 'test-echo' });
  assert.equal(res.status, 202, res.text);
  return eventually('test-echo to be installed', async () => {
    const j = (await api.get(`/api/store/jobs/${res.body.job.id}`)).body.job;
    if (j.state === 'failed') throw new Error(`install failed: ${j.error}`);
    return j.state === 'healthy' ? j : undefined;
  });
}

/**
 * The end of a store test: removes test-echo with its data (nothing left in the shared engine,
 * even when a test failed half-way), stops the cell, deletes `dirs` (the catalog, a restarted
 * cell's data dir: a restarted cell does not own it).
 */
export async function stopStoreCell(
  cell: CellProcess | undefined,
  api: ApiClient | undefined,
  dirs: Array<string | undefined>,
): Promise<void> {
  if (cell && api) await api.post('/api/store/remove', { id: 'test-echo', purge: true }).catch(() => undefined);
  await cell?.destroy();
  for (const dir of dirs) if (dir) rmSync(dir, { recursive: true, force: true });
}
