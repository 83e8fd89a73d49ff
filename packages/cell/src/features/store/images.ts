import type { CatalogRefusal as Refused, ServiceManifest, TrustedKeyInput } from '@pic/manifest';
import type { ContainerRuntime } from '@pic/runtime';
import { toRefusal, type Refusal } from './catalog.js';
import { manifestLib } from './manifest-lib.js';

export type ImageVerification = 'enforce' | 'warn' | 'off';

/** What the installer creates each container from, decided once the image checks are done. */
export interface ImagePlan {
  /** The manifest's container name. */
  container: string;
  /**
   * The reference given to the engine: the pinned digest reference once verified (`registry/repo@sha256:…`,
   * or the pinned image ID for an image with no registry), else the local tag.
   */
  image: string;
  /** The digest the manifest pins. */
  pinned: string;
  /** The digest the engine reports for the local image (undefined in off mode, or until it is pulled). */
  actual: string | undefined;
  /** Fingerprint of the trusted key that signed the image, when it carries a signature that verified. */
  signedBy: string | undefined;
  /** Set when the engine lacks the image: the install job's pulling step pulls this reference by digest. */
  pull?: string;
}

export interface ImageCheck {
  plans: ImagePlan[];
  /** What warn mode let through; each is logged and audited by the caller. */
  warnings: Refusal[];
}

/**
 * The registry a repository names, by Docker's rule (its first component has a dot or a port, or is
 * localhost), or undefined: such an image is never pulled (Docker would take it from Docker Hub).
 */
export function registryOf(repository: string): string | undefined {
  const first = repository.split('/')[0]!;
  if (!repository.includes('/')) return undefined;
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/**
 * True when the engine's image is the one pinned: its registry manifest digest (RepoDigests holds
 * `repository@digest`, set by a pull, which the engine verified) or, for an image built or loaded
 * without a registry, its image ID.
 */
export function imageMatches(
  info: { digest: string; repoDigests: string[] },
  repository: string,
  digest: string,
): boolean {
  return info.digest === digest || info.repoDigests.includes(`${repository}@${digest}`);
}

/**
 * ADR 001's image rule, before any container exists. An image the engine has must be the one the
 * manifest pins (by registry digest or image ID), and a signature, where the manifest carries one,
 * must verify against the cell's trusted keys. In enforce mode (the default) an unsigned image is
 * refused too; warn records what it would have refused and goes on; off checks nothing. An image
 * the engine lacks is planned as a pull by digest from the registry its reference names (the
 * install job's pulling step, which verifies it before anything is created); one whose reference
 * names no registry is refused in every mode. Throws CatalogRefusal.
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
    const registry = registryOf(ref.repository);
    const byDigest = `${ref.repository}@${ref.digest}`;
    // A registry image is looked up by its pinned digest reference; a local one by its tag (or its ID).
    const local = registry ? byDigest : ref.tag ? `${ref.repository}:${ref.tag}` : ref.digest;
    const info = await runtime.inspectImage(local);
    if (!info && !registry) {
      const why =
        `image ${local} (container "${c.name}") is not on the container engine, and its reference names no ` +
        `registry to pull it from; the manifest pins ${ref.digest}: load that image first`;
      throw new CatalogRefusal('image_digest_mismatch', why, { container: c.name, expected: ref.digest });
    }
    let signedBy: string | undefined;
    if (mode !== 'off') {
      try {
        const sig = verifyImageSignature(c, trustedKeys);
        if (sig.signed) signedBy = sig.fingerprint;
        else {
          const why = `image ${c.image} (container "${c.name}") carries no signature, and this cell's image_verification is enforce`;
          problem(new CatalogRefusal('missing_bundle', why, { container: c.name }));
        }
      } catch (err) {
        if (!(err instanceof CatalogRefusal)) throw err;
        problem(err);
      }
    }
    if (!info) {
      // Pulled by digest in the job; what arrives is checked there, before anything is created.
      plans.push({
        container: c.name,
        image: byDigest,
        pinned: ref.digest,
        actual: undefined,
        signedBy,
        pull: byDigest,
      });
      continue;
    }
    if (mode === 'off') {
      plans.push({ container: c.name, image: local, pinned: ref.digest, actual: undefined, signedBy: undefined });
      continue;
    }
    const matches = imageMatches(info, ref.repository, ref.digest);
    if (!matches) {
      try {
        assertImageDigest(ref.digest, info.digest, `image ${local} (container "${c.name}")`);
      } catch (err) {
        if (!(err instanceof CatalogRefusal)) throw err;
        problem(err);
      }
    }
    // Create from the verified digest reference, so a tag moved after this check cannot change what runs.
    const image = matches ? (registry ? byDigest : ref.digest) : local;
    plans.push({ container: c.name, image, pinned: ref.digest, actual: info.digest, signedBy });
  }
  return { plans, warnings };
}
