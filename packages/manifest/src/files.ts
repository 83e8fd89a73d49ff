import { isAbsolute, join, relative, resolve } from 'node:path';
import { acceptIndex, indexEntry, verifyManifest, type AcceptIndexOptions, type VerifiedIndex } from './catalog.js';
import { CatalogRefusal } from './errors.js';
import { MAX_INDEX_BYTES } from './catalog.js';
import { MAX_MANIFEST_BYTES } from './manifest.js';
import { MAX_BUNDLE_BYTES } from './signing.js';
import { FileReadError, readRegularFile } from './read-file.js';
import type { CatalogIndex, ServiceManifest } from './schema.js';

/** Where a catalog keeps its files, relative to the catalog root (this repository's layout). */
export const INDEX_PATH = 'services-index/index.json';
export const BUNDLE_PATH = 'services-index/index.sig.json';
export const PUBLIC_KEY_PATH = 'services-index/store.pub.pem';
export const MANIFESTS_DIR = 'manifests';

export interface CatalogFiles extends Omit<AcceptIndexOptions, 'indexBytes' | 'bundle'> {
  /** The catalog root: the directory holding manifests/ and services-index/. */
  root: string;
  /** Index file relative to root; INDEX_PATH when omitted. */
  indexPath?: string;
  /** Bundle file relative to root; BUNDLE_PATH when omitted. */
  bundlePath?: string;
  /** The time limit of each file's read (read-file.ts's default when omitted). */
  readTimeoutMs?: number;
}

export interface LoadedCatalog extends VerifiedIndex {
  /** Every listed manifest, verified against the index, in index order. */
  manifests: ServiceManifest[];
}

/**
 * Reads and accepts a catalog's index from disk (signature, rollback, expiry): no manifest is read.
 * Each file is read as a regular file with a size bound and a time limit (read-file.ts): a FIFO, a
 * directory or an endless file is a refusal, never a hang or an I/O error.
 */
export async function readCatalogIndex(files: CatalogFiles): Promise<VerifiedIndex> {
  const indexPath = join(files.root, files.indexPath ?? INDEX_PATH);
  const timeoutMs = files.readTimeoutMs;
  const indexBytes = await readRegularFile(indexPath, { maxBytes: MAX_INDEX_BYTES, timeoutMs }).catch((err) => {
    throw new CatalogRefusal('malformed_index', `cannot read the catalog index ${indexPath}: it ${describe(err)}`);
  });
  // A missing bundle file is the "missing bundle" refusal; anything else wrong with it is a malformed one.
  const bundlePath = join(files.root, files.bundlePath ?? BUNDLE_PATH);
  const bundle = await readRegularFile(bundlePath, { maxBytes: MAX_BUNDLE_BYTES, timeoutMs }).catch((err) => {
    if (err instanceof FileReadError && err.problem === 'missing') return undefined;
    throw new CatalogRefusal('malformed_bundle', `cannot read the signature bundle ${bundlePath}: it ${describe(err)}`);
  });
  return acceptIndex({ ...files, indexBytes, bundle });
}

/** Reads one listed manifest from the catalog root and verifies it against the signed index. */
export async function readCatalogManifest(
  root: string,
  index: CatalogIndex,
  id: string,
  readTimeoutMs?: number,
): Promise<ServiceManifest> {
  const entry = indexEntry(index, id);
  const base = resolve(root);
  const file = resolve(base, entry.manifest);
  const rel = relative(base, file);
  // The schema already forbids "..", but a path is only trusted if it really stays inside the root.
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new CatalogRefusal('missing_manifest', `${entry.manifest} lies outside the catalog root`, { id });
  const text = await readRegularFile(file, { maxBytes: MAX_MANIFEST_BYTES, timeoutMs: readTimeoutMs }).catch((err) => {
    const reason = `the signed index lists ${entry.manifest} for "${id}", but it ${describe(err)}`;
    throw new CatalogRefusal('missing_manifest', reason, { id });
  });
  return verifyManifest(index, id, text);
}

function describe(err: unknown): string {
  return err instanceof FileReadError ? err.message : `cannot be read (${(err as Error).message})`;
}

/** Index plus every manifest it lists, all verified; the first refusal wins. */
export async function loadCatalog(files: CatalogFiles): Promise<LoadedCatalog> {
  const verified = await readCatalogIndex(files);
  const manifests: ServiceManifest[] = [];
  for (const entry of verified.index.services) {
    manifests.push(await readCatalogManifest(files.root, verified.index, entry.id, files.readTimeoutMs));
  }
  return { ...verified, manifests };
}
