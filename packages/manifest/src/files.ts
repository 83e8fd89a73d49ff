import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { acceptIndex, indexEntry, verifyManifest, type AcceptIndexOptions, type VerifiedIndex } from './catalog.js';
import { CatalogRefusal } from './errors.js';
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
}

export interface LoadedCatalog extends VerifiedIndex {
  /** Every listed manifest, verified against the index, in index order. */
  manifests: ServiceManifest[];
}

/** Reads and accepts a catalog's index from disk (signature, rollback, expiry): no manifest is read. */
export async function readCatalogIndex(files: CatalogFiles): Promise<VerifiedIndex> {
  const indexPath = join(files.root, files.indexPath ?? INDEX_PATH);
  const indexBytes = await readFile(indexPath).catch((err: NodeJS.ErrnoException) => {
    throw new CatalogRefusal('malformed_index', `cannot read the catalog index ${indexPath}: ${err.code ?? err.message}`);
  });
  // A missing bundle file is the "missing bundle" refusal, not an I/O error.
  const bundle = await readFile(join(files.root, files.bundlePath ?? BUNDLE_PATH)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return acceptIndex({ ...files, indexBytes, bundle });
}

/** Reads one listed manifest from the catalog root and verifies it against the signed index. */
export async function readCatalogManifest(root: string, index: CatalogIndex, id: string): Promise<ServiceManifest> {
  const entry = indexEntry(index, id);
  const base = resolve(root);
  const file = resolve(base, entry.manifest);
  const rel = relative(base, file);
  // The schema already forbids "..", but a path is only trusted if it really stays inside the root.
  if (rel.startsWith('..') || isAbsolute(rel)) throw new CatalogRefusal('missing_manifest', `${entry.manifest} lies outside the catalog root`, { id });
  const text = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new CatalogRefusal('missing_manifest', `the signed index lists ${entry.manifest} for "${id}", but it cannot be read (${err.code ?? err.message})`, { id });
  });
  return verifyManifest(index, id, text);
}

/** Index plus every manifest it lists, all verified; the first refusal wins. */
export async function loadCatalog(files: CatalogFiles): Promise<LoadedCatalog> {
  const verified = await readCatalogIndex(files);
  const manifests: ServiceManifest[] = [];
  for (const entry of verified.index.services) manifests.push(await readCatalogManifest(files.root, verified.index, entry.id));
  return { ...verified, manifests };
}
