import type { CatalogRefusal as Refused, ServiceManifest, TrustedKeyInput } from '@pic/manifest';
import type { ContainerRuntime } from '@pic/runtime';
import { toRefusal, type Refusal } from './catalog.js';
import { manifestLib } from './manifest-lib.js';

export type ImageVerification = 'enforce' | 'warn' | 'off';

/** What the installer creates each container from, decided once the image checks are done. */
export interface ImagePlan {
  /** The manifest's container name. */
  container: string;
  /** The reference given to the engine: the pinned image ID when it verified, else the local tag. */
  image: string;
  /** The digest the manifest pins. */
  pinned: string;
  /** The digest the engine reports for the local image (undefined in off mode). */
  actual: string | undefined;
  /** Fingerprint of the trusted key that signed the image, when it carries a signature that verified. */
  signedBy: string | undefined;
}

export interface ImageCheck {
  plans: ImagePlan[];
  /** What warn mode let through; each is logged and audited by the caller. */
  warnings: Refusal[];
}

/**
 * ADR 001's image rule, before any container exists: the local image must be the one the manifest
 * pins (its image ID equals the pinned digest), and a signature, where the manifest carries one,
 * must verify against the cell's trusted keys. In enforce mode (the default) an unsigned image is
 * refused too; warn records what it would have refused and goes on; off checks nothing. A missing
 * image is refused in every mode: there is nothing to run (the cell never pulls).
 * Throws CatalogRefusal.
 */
export async function checkImages(
  runtime: ContainerRuntime,
  manifest: ServiceManifest,
  trustedKeys: readonly TrustedKeyInput[],
  mode: ImageVerification,
): Promise<ImageCheck> {
  const { CatalogRefusal, assertImageDigest, parseImageReference, verifyImageSignature } = await manifestLib();
  const plans: ImagePlan[] = [];
  const warnings: Refusal[] = [];
  const problem = (err: Refused) => {
    if (mode === 'enforce') throw err;
    warnings.push(toRefusal(err));
  };

  for (const c of manifest.containers) {
    const ref = parseImageReference(c.image);
    // The tag names the local image to check; without one, the pinned ID itself is the lookup.
    const local = ref.tag ? `${ref.repository}:${ref.tag}` : ref.digest;
    const info = await runtime.inspectImage(local);
    if (!info) {
      throw new CatalogRefusal('image_digest_mismatch', `image ${local} (container "${c.name}") is not on the container engine; the manifest pins ${ref.digest} and the cell never pulls: load that image first`, {
        container: c.name,
        expected: ref.digest,
      });
    }
    if (mode === 'off') {
      plans.push({ container: c.name, image: local, pinned: ref.digest, actual: undefined, signedBy: undefined });
      continue;
    }
    let matches = true;
    try {
      assertImageDigest(ref.digest, info.digest, `image ${local} (container "${c.name}")`);
    } catch (err) {
      if (!(err instanceof CatalogRefusal)) throw err;
      matches = false;
      problem(err);
    }
    let signedBy: string | undefined;
    try {
      const sig = verifyImageSignature(c, trustedKeys);
      if (sig.signed) signedBy = sig.fingerprint;
      else problem(new CatalogRefusal('missing_bundle', `image ${c.image} (container "${c.name}") carries no signature, and this cell's image_verification is enforce`, { container: c.name }));
    } catch (err) {
      if (!(err instanceof CatalogRefusal)) throw err;
      problem(err);
    }
    // Create from the verified ID, so a tag moved after this check cannot change what runs.
    plans.push({ container: c.name, image: matches ? ref.digest : local, pinned: ref.digest, actual: info.digest, signedBy });
  }
  return { plans, warnings };
}
