import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import tar from 'tar-stream';

/**
 * Builds an image as a `docker save` archive from files in memory, without an engine, a registry or a
 * build step: one layer, a config JSON, and manifest.json. Every byte is fixed by the inputs (sorted
 * entries, fixed times and owners), so the image ID — sha256 of the config JSON, the digest the cell
 * pins — is the same on every machine given the same files. Loading it twice is a no-op.
 */

export type ImageEntry =
  | { type: 'file'; path: string; content: Buffer | string; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string };

export interface ImageConfig {
  cmd?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  /** e.g. ["8080/tcp"] */
  exposedPorts?: string[];
  volumes?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  user?: string;
  stopSignal?: string;
}

export interface ImageArchiveSpec {
  /** name:tag the engine tags the image with when it loads the archive. */
  repoTag: string;
  entries: ImageEntry[];
  config: ImageConfig;
  /** OCI architecture name; the host's when omitted. */
  architecture?: string;
  /** Fixed so the digest does not depend on when the archive was made. */
  created?: string;
}

export interface ImageArchive {
  archive: Buffer;
  /** sha256:<hex> of the config JSON: the image ID the engine reports after loading. */
  digest: string;
  /** sha256:<hex> of the uncompressed layer tar. */
  layerDiffId: string;
  repoTag: string;
}

/** 2000-01-01T00:00:00Z: a fixed time for every entry and for the image's `created`. */
export const FIXED_TIME = new Date('2000-01-01T00:00:00Z');

export function hostArchitecture(): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return map[process.arch] ?? process.arch;
}

export async function buildImageArchive(spec: ImageArchiveSpec): Promise<ImageArchive> {
  const layer = await tarOf(withParentDirs(spec.entries));
  const layerDiffId = sha256(layer);
  const created = spec.created ?? FIXED_TIME.toISOString().replace('.000Z', 'Z');
  const c = spec.config;
  const config = {
    architecture: spec.architecture ?? hostArchitecture(),
    os: 'linux',
    created,
    config: {
      ...(c.user ? { User: c.user } : {}),
      ...(c.exposedPorts?.length ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) } : {}),
      Env: Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
      ...(c.cmd ? { Cmd: c.cmd } : {}),
      ...(c.volumes?.length ? { Volumes: Object.fromEntries(c.volumes.map((v) => [v, {}])) } : {}),
      WorkingDir: c.workingDir ?? '/',
      ...(c.labels ? { Labels: sortKeys(c.labels) } : {}),
      ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [layerDiffId] },
    history: [{ created, created_by: 'buildImageArchive (@pic/runtime): files assembled in memory' }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const digest = sha256(configBytes);
  const configName = `${digest.slice('sha256:'.length)}.json`;
  const layerName = `${layerDiffId.slice('sha256:'.length)}/layer.tar`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [spec.repoTag], Layers: [layerName] }]));
  const archive = await tarOf([
    { type: 'file', path: configName, content: configBytes },
    { type: 'dir', path: posix.dirname(layerName) },
    { type: 'file', path: layerName, content: layer },
    { type: 'file', path: 'manifest.json', content: manifest },
  ]);
  return { archive, digest, layerDiffId, repoTag: spec.repoTag };
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function sortKeys(obj: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Normalises paths (no leading '/'), adds missing parent directories, sorts, refuses duplicates. */
function withParentDirs(entries: ImageEntry[]): ImageEntry[] {
  const byPath = new Map<string, ImageEntry>();
  for (const e of entries) {
    const path = posix.normalize(e.path).replace(/^\/+/, '').replace(/\/+$/, '');
    if (!path || path === '.' || path.startsWith('..'))
      throw new Error(`image entry path ${JSON.stringify(e.path)} is not inside the image`);
    if (byPath.has(path)) throw new Error(`image entry ${path} is listed twice`);
    byPath.set(path, { ...e, path });
  }
  for (const path of [...byPath.keys()]) {
    for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) {
      if (!byPath.has(dir)) byPath.set(dir, { type: 'dir', path: dir });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function tarOf(entries: ImageEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const common = { mtime: FIXED_TIME, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  for (const e of entries) {
    if (e.type === 'dir') pack.entry({ ...common, name: `${e.path}/`, type: 'directory', mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink')
      pack.entry({ ...common, name: e.path, type: 'symlink', linkname: e.target, mode: 0o777 });
    else {
      const content = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
      pack.entry({ ...common, name: e.path, type: 'file', mode: e.mode ?? 0o644, size: content.length }, content);
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
