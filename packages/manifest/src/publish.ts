import { isMap, isSeq, parseDocument } from 'yaml';
import { parseManifest } from './manifest.js';
import type { SerializedBundle } from './signing.js';
import type { ServiceManifest } from './schema.js';

/** What a container's image becomes when its image is published: the pinned reference and its signature. */
export interface PublishedImage {
  /** `registry/repository:tag@sha256:…` */
  image: string;
  /** Sigstore bundle over cosign's payload for that reference; omitted: any old signature is removed. */
  signature?: SerializedBundle;
}

/**
 * A manifest's YAML text with some containers' `image` (and `signature`) replaced, everything else
 * (comments, order, layout) kept. `images` maps container names to what they now run; a name the
 * manifest does not have is an error. Returns the new text and the manifest it parses to (validated).
 */
export function pinManifestImages(
  text: string,
  images: Readonly<Record<string, PublishedImage>>,
  subject = 'manifest',
): { text: string; manifest: ServiceManifest } {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new TypeError(`${subject}: not valid YAML: ${doc.errors[0]!.message}`);
  const containers = doc.get('containers');
  if (!isSeq(containers)) throw new TypeError(`${subject}: has no containers list`);
  const seen = new Set<string>();
  containers.items.forEach((item, i) => {
    if (!isMap(item)) return;
    const name = String(item.get('name'));
    const published = images[name];
    if (!published) return;
    seen.add(name);
    doc.setIn(['containers', i, 'image'], published.image);
    if (published.signature)
      doc.setIn(['containers', i, 'signature'], doc.createNode(published.signature, { flow: true }));
    else if (item.has('signature')) doc.deleteIn(['containers', i, 'signature']);
  });
  const missing = Object.keys(images).filter((n) => !seen.has(n));
  if (missing.length > 0)
    throw new TypeError(`${subject}: no container named ${missing.map((n) => `"${n}"`).join(', ')}`);
  const out = doc.toString({ lineWidth: 0 });
  return { text: out, manifest: parseManifest(out, subject) };
}
