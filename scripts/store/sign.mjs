#!/usr/bin/env node
// Signs the store's catalog: recomputes every manifest's digest from manifests/, writes the index
// and its sigstore bundle (keyed, offline). The private key is only read, never written or copied.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  PASSPHRASE_ENV,
  UsageError,
  isInside,
  loadManifestPackage,
  loadPrivateKeyFile,
  repoRoot,
  resolveFrom,
  runMain,
  signCatalog,
} from './lib.mjs';

const USAGE = `usage: npm run store:sign -- --key <private key PEM> [options]

  --key <path>          the store's ECDSA P-256 private key (PEM; encrypted keys read the
                        passphrase from $${PASSPHRASE_ENV}). Required: nothing is signed without it.
  --root <dir>          catalog root holding manifests/ and services-index/ (default: this repository)
  --index <path>        index to write, relative to the root (default services-index/index.json)
  --out <path>          bundle to write, relative to the root (default services-index/index.sig.json)
  --version <N>         release number; must exceed the current index's (default: current + 1)
  --expires-days <D>    days until cells refuse this index (default 90)
  --no-build            use packages/manifest/dist as it is (default: build the workspace first)
`;

await runMain(
  USAGE,
  {
    key: 'string',
    root: 'string',
    index: 'string',
    out: 'string',
    version: 'string',
    'expires-days': 'string',
    'no-build': 'boolean',
  },
  async (args) => {
    if (!args.key) throw new UsageError('refusing to sign without --key <path to the store private key>');
    const expiresDays = args['expires-days'] === undefined ? 90 : Number(args['expires-days']);
    if (!Number.isInteger(expiresDays) || expiresDays < 1 || expiresDays > 3660)
      throw new UsageError('--expires-days must be a whole number of days, 1 to 3660');
    const requestedVersion = args.version === undefined ? undefined : Number(args.version);
    if (requestedVersion !== undefined && (!Number.isSafeInteger(requestedVersion) || requestedVersion < 1))
      throw new UsageError('--version must be a positive integer');

    const m = await loadManifestPackage({ build: !args['no-build'] });
    const root = resolveFrom(process.cwd(), args.root ?? repoRoot);
    const indexFile = resolveFrom(root, args.index ?? m.INDEX_PATH);
    const bundleFile = resolveFrom(root, args.out ?? m.BUNDLE_PATH);
    const keyFile = resolveFrom(process.cwd(), args.key);

    const privateKey = await loadPrivateKeyFile(m, keyFile);
    if (isInside(repoRoot, keyFile))
      process.stderr.write(`warning: ${keyFile} lies inside the repository; never commit it\n`);

    const { version, expires, services, verified } = await signCatalog(m, {
      root,
      indexFile,
      bundleFile,
      privateKey,
      requestedVersion,
      expiresDays,
    });

    const published = await readFile(join(root, m.PUBLIC_KEY_PATH), 'utf8').catch(() => undefined);
    if (published !== undefined && m.keyFingerprint(published) !== verified.signedBy) {
      process.stderr.write(
        `warning: the signing key (${verified.signedBy}) is not ${m.PUBLIC_KEY_PATH} (${m.keyFingerprint(published)}); cells that trust only that key will refuse this index\n`,
      );
    }
    const rel = (p) => relative(process.cwd(), p) || p;
    process.stdout.write(
      `signed catalog version ${version} (${services.length} services, expires ${expires})\n` +
        `  key       ${verified.signedBy}\n  index     ${rel(indexFile)} (${verified.digest})\n  bundle    ${rel(bundleFile)}\n` +
        services.map((s) => `  ${s.id.padEnd(10)}${s.version.padEnd(10)}${s.digest}\n`).join(''),
    );
    return 0;
  },
);
