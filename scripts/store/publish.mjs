#!/usr/bin/env node
// npm run store:publish: builds the first-party images, pushes them to a registry, pins each
// image's registry digest (read back from the registry) in its manifest, signs the images and the
// catalog index with the store key (keyed, offline sigstore, as store:sign). Nothing is pinned that
// was not pushed, so a digest in the signed catalog is always the digest of a real image.
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  PASSPHRASE_ENV,
  UsageError,
  isInside,
  loadManifestPackage,
  loadPrivateKeyFile,
  loadRuntimePackage,
  repoRoot,
  resolveFrom,
  runMain,
} from './lib.mjs';
import { DEFAULT_BUILDER, checkRegistry, loadBuilder, publishCatalog } from './publish-lib.mjs';

const USAGE = `usage: npm run store:publish -- --registry <host:port> --key <private key PEM> [options]

  --registry <host>     registry to push to, e.g. registry.example.org or 127.0.0.1:5000
                        (default $PIC_STORE_REGISTRY). Images become <registry>/<repo>:<tag>@sha256:…
  --key <path>          the store's ECDSA P-256 private key (default $PIC_STORE_KEY; encrypted keys
                        read the passphrase from $${PASSPHRASE_ENV}). Signs the images and the index.
  --service <id>        publish only this service (repeatable; default: every manifest under --root)
  --root <dir>          catalog root whose manifests/ are the sources (default: this repository)
  --out <dir>           catalog root to write manifests/ and services-index/ into (default: --root)
  --builder <module>    image builder module exporting buildFirstPartyImage(service, { dockerHost, log })
                        (default scripts/images/first-party/build.mjs)
  --version <N>         index release number; must exceed the current one (default: current + 1)
  --expires-days <D>    days until cells refuse this index (default 90)
  --no-build            use packages/*/dist as they are (default: build them first)

The engine is DOCKER_HOST (or /var/run/docker.sock). Every service's image is built, pushed, and
read back (the engine's RepoDigest; on loopback registries also the registry's own answer) before
its manifest is rewritten; the index is signed last, over every manifest under --out.
`;

await runMain(
  USAGE,
  {
    registry: 'string',
    key: 'string',
    service: 'strings',
    root: 'string',
    out: 'string',
    builder: 'string',
    version: 'string',
    'expires-days': 'string',
    'no-build': 'boolean',
  },
  async (args) => {
    const registryArg = args.registry ?? process.env.PIC_STORE_REGISTRY;
    if (!registryArg) throw new UsageError('refusing to publish without --registry (or $PIC_STORE_REGISTRY)');
    const keyArg = args.key ?? process.env.PIC_STORE_KEY;
    if (!keyArg)
      throw new UsageError('refusing to publish without --key <path to the store private key> (or $PIC_STORE_KEY)');
    const expiresDays = args['expires-days'] === undefined ? 90 : Number(args['expires-days']);
    if (!Number.isInteger(expiresDays) || expiresDays < 1 || expiresDays > 3660)
      throw new UsageError('--expires-days must be a whole number of days, 1 to 3660');
    const version = args.version === undefined ? undefined : Number(args.version);
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1))
      throw new UsageError('--version must be a positive integer');
    for (const s of args.service ?? [])
      if (!/^[a-z][a-z0-9-]{0,62}$/.test(s)) throw new UsageError(`--service "${s}" is not a service id`);
    let registry;
    try {
      registry = checkRegistry(registryArg);
    } catch (err) {
      throw new UsageError(err.message);
    }

    const m = await loadManifestPackage({ build: !args['no-build'] });
    const rt = await loadRuntimePackage({ build: !args['no-build'] });
    const root = resolveFrom(process.cwd(), args.root ?? repoRoot);
    const out = resolveFrom(process.cwd(), args.out ?? root);
    const keyFile = resolveFrom(process.cwd(), keyArg);
    if (isInside(repoRoot, keyFile))
      process.stderr.write(`warning: ${keyFile} lies inside the repository; never commit it\n`);
    const privateKey = await loadPrivateKeyFile(m, keyFile);
    const build = await loadBuilder(args.builder ? resolveFrom(process.cwd(), args.builder) : DEFAULT_BUILDER);
    const dockerHost = process.env.DOCKER_HOST;
    const runtime = new rt.DockerRuntime({ cellId: 'pic-store-publish', dockerHost });
    const log = (msg) => process.stderr.write(`[publish] ${msg}\n`);

    const result = await publishCatalog({
      m,
      runtime,
      build,
      registry,
      root,
      out,
      services: args.service,
      privateKey,
      dockerHost,
      version,
      expiresDays,
      log,
    });
    await writeFile(join(out, m.PUBLIC_KEY_PATH), m.publicKeyPem(privateKey), { mode: 0o644 });
    const rel = (p) => relative(process.cwd(), p) || p;
    process.stdout.write(
      `published and signed catalog version ${result.version} (${result.services.length} services, expires ${result.expires})\n` +
        `  key       ${result.verified.signedBy}\n  index     ${rel(join(out, m.INDEX_PATH))} (${result.verified.digest})\n` +
        result.published.flatMap((p) => p.images.map((i) => `  ${p.id.padEnd(10)}${i}\n`)).join(''),
    );
    return 0;
  },
);
