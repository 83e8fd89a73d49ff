// The publishing steps shared by `npm run store:publish` and `npm run services:local`: build each
// service's image (scripts/images/first-party/build.mjs, or another builder module), push it to a
// registry, read back the manifest digest the registry serves, pin it (and sign it) in the service's
// manifest, and sign the catalog index. A digest written here is always that of a pushed image.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, signCatalog } from './lib.mjs';

/** The first-party image builder (scripts/images/first-party/build.mjs): buildFirstPartyImage(service, { dockerHost, log }). */
export const DEFAULT_BUILDER = join(repoRoot, 'scripts', 'images', 'first-party', 'build.mjs');
/** host[:port] of a registry, lowercase, as Docker reads the first part of an image name. */
const REGISTRY_RE = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::[0-9]{1,5})?$/;

export function checkRegistry(registry) {
  if (!REGISTRY_RE.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    throw new Error(
      `--registry "${registry}" is not a registry host: give host:port or a dotted name, e.g. 127.0.0.1:5000 or registry.example.org`,
    );
  }
  return registry;
}

export async function loadBuilder(path = DEFAULT_BUILDER) {
  let mod;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    throw new Error(`cannot load the image builder ${path} (${err.code ?? err.message})`);
  }
  if (typeof mod.buildFirstPartyImage !== 'function')
    throw new Error(`${path} does not export buildFirstPartyImage(service, { dockerHost, log })`);
  return mod.buildFirstPartyImage;
}

/** A builder's answer as a list of { image: "repo:tag", id: "sha256:…" }. */
function builtImages(service, result) {
  const list = (Array.isArray(result) ? result : [result]).filter(Boolean);
  if (list.length === 0) throw new Error(`the builder returned no image for ${service}`);
  for (const b of list) {
    if (typeof b.image !== 'string' || !/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(b.image)) {
      throw new Error(`the builder's image for ${service} is not repository:tag: ${JSON.stringify(b.image)}`);
    }
    if (typeof b.id !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(b.id))
      throw new Error(`the builder's image id for ${service} is not sha256:<hex>: ${JSON.stringify(b.id)}`);
  }
  return list;
}

const repositoryOf = (ref) => ref.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[^/:]*$/, '');
/** The repository path without a registry host, e.g. pic/calendar. */
const pathOf = (repository) => {
  const [first, ...rest] = repository.split('/');
  return rest.length > 0 && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? rest.join('/')
    : repository;
};

/**
 * Asks the registry itself which digest it serves for repository@digest (HEAD on the manifest), so
 * the pin is what the registry holds, not only what the engine says it pushed. Plain HTTP: for
 * registries on loopback (what Docker allows without TLS). Returns the registry's digest or undefined
 * when the registry is not on loopback (then the engine's RepoDigest is the read-back).
 */
function registryDigest(registry, path, digest) {
  const [host, port] = registry.split(':');
  if (!/^(127\.\d+\.\d+\.\d+|localhost)$/.test(host)) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port ?? 80),
        method: 'HEAD',
        path: `/v2/${path}/manifests/${digest}`,
        headers: {
          accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        if (res.statusCode !== 200)
          reject(new Error(`registry ${registry} answers ${res.statusCode} for ${path}@${digest}`));
        else resolve(String(res.headers['docker-content-digest'] ?? ''));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new Error(`registry ${registry} did not answer: ${err.message}`)));
    req.end();
  });
}

/**
 * Builds, pushes and pins one service: returns the manifest text with every container's image
 * replaced by `<registry>/<repo>:<tag>@<digest>` and signed with `privateKey`.
 */
export async function publishService({
  m,
  runtime,
  build,
  registry,
  service,
  manifestText,
  subject,
  privateKey,
  dockerHost,
  log,
}) {
  const manifest = m.parseManifest(manifestText, subject);
  log(`building the ${service} image`);
  const built = builtImages(service, await build(service, { dockerHost, log }));
  const pushed = new Map(); // built image → pinned reference
  for (const b of built) {
    const [repo, tag] = [b.image.slice(0, b.image.lastIndexOf(':')), b.image.slice(b.image.lastIndexOf(':') + 1)];
    const target = `${registry}/${pathOf(repo)}`;
    const local = await runtime.inspectImage(b.id);
    if (!local) throw new Error(`the builder reported ${b.image} as ${b.id}, but the engine has no such image`);
    await runtime.tagImage(b.id, target, tag);
    log(`pushing ${target}:${tag}`);
    const digest = await runtime.pushImage(`${target}:${tag}`);
    // Read back: the engine now records the registry digest, and the registry serves that digest.
    const info = await runtime.inspectImage(`${target}:${tag}`);
    if (info?.digest !== b.id || !info.repoDigests.includes(`${target}@${digest}`)) {
      throw new Error(
        `after the push, ${target}:${tag} does not carry RepoDigest ${target}@${digest} for image ${b.id}`,
      );
    }
    const served = await registryDigest(registry, pathOf(repo), digest);
    if (served !== undefined && served !== digest)
      throw new Error(`registry ${registry} serves ${served} for ${target}@${digest}`);
    pushed.set(b, `${target}:${tag}@${digest}`);
  }
  // Containers map to the built image of the same repository; one image serves every container.
  const images = {};
  for (const c of manifest.containers) {
    const b =
      built.length === 1
        ? built[0]
        : built.find((x) => pathOf(x.image.slice(0, x.image.lastIndexOf(':'))) === pathOf(repositoryOf(c.image)));
    if (!b)
      throw new Error(
        `${subject}: no built image for container "${c.name}" (${c.image}); the builder made ${built.map((x) => x.image).join(', ')}`,
      );
    const image = pushed.get(b);
    images[c.name] = { image, signature: await m.signImage(image, privateKey) };
  }
  return { ...m.pinManifestImages(manifestText, images, subject), images: [...pushed.values()] };
}

/**
 * The whole publish: each service in `services` (ids of manifests under <root>/manifests) is built,
 * pushed and pinned into <out>/manifests/<id>.yaml, then <out>'s catalog is signed (every manifest
 * under <out>/manifests). Returns what was signed.
 */
export async function publishCatalog({
  m,
  runtime,
  build,
  registry,
  root,
  out,
  services,
  privateKey,
  dockerHost,
  version,
  expiresDays,
  log,
}) {
  const manifestsDir = join(root, m.MANIFESTS_DIR);
  const files = (await readdir(manifestsDir).catch(() => [])).filter((n) => /\.ya?ml$/.test(n)).sort();
  const available = new Map();
  for (const f of files) {
    const text = await readFile(join(manifestsDir, f), 'utf8');
    available.set(m.parseManifest(text, `${m.MANIFESTS_DIR}/${f}`).id, { file: f, text });
  }
  const wanted = services?.length ? services : [...available.keys()];
  if (wanted.length === 0) throw new Error(`no manifests in ${manifestsDir}`);
  for (const id of wanted)
    if (!available.has(id))
      throw new Error(
        `no manifest for "${id}" in ${manifestsDir} (there are: ${[...available.keys()].join(', ') || 'none'})`,
      );
  await mkdir(join(out, m.MANIFESTS_DIR), { recursive: true });
  await mkdir(join(out, 'services-index'), { recursive: true });
  const published = [];
  for (const id of wanted) {
    const { file, text } = available.get(id);
    const subject = `${m.MANIFESTS_DIR}/${file}`;
    const result = await publishService({
      m,
      runtime,
      build,
      registry,
      service: id,
      manifestText: text,
      subject,
      privateKey,
      dockerHost,
      log,
    });
    await writeFile(join(out, m.MANIFESTS_DIR, file), result.text, { mode: 0o644 });
    published.push({ id, images: result.images });
  }
  const signed = await signCatalog(m, {
    root: out,
    indexFile: join(out, m.INDEX_PATH),
    bundleFile: join(out, m.BUNDLE_PATH),
    privateKey,
    requestedVersion: version,
    expiresDays,
  });
  return { ...signed, published };
}
