import type * as Manifest from '@pic/manifest';

/** @pic/manifest, which brings sigstore: loaded on first use of the store, not at start-up of every cell. */
export type ManifestLib = typeof Manifest;

let lib: ManifestLib | undefined;

export async function manifestLib(): Promise<ManifestLib> {
  lib ??= await import('@pic/manifest');
  return lib;
}
