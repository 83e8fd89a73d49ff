#!/usr/bin/env node
// Verifies the store's catalog as a cell would: the index's bundle against the trusted key(s),
// its expiry, and every listed manifest's canonical digest; also that no manifest is left unlisted.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, loadManifestPackage, repoRoot, resolveFrom, runMain } from './lib.mjs';

const USAGE = `usage: npm run store:verify [-- options]

  --key <path>          a trusted public key (PEM); repeat for several (key rotation).
                        Default: services-index/store.pub.pem under the root.
  --root <dir>          catalog root holding manifests/ and services-index/ (default: this repository)
  --index <path>        index, relative to the root (default services-index/index.json)
  --bundle <path>       bundle, relative to the root (default services-index/index.sig.json)
  --min-version <N>     also refuse an index older than N (rollback check)
  --now <ISO time>      check expiry at this time instead of now
  --no-build            use packages/manifest/dist as it is (default: build the workspace first)

Exit status: 0 verified, 1 refused (the reason is printed), 2 usage error.
`;

await runMain(
  USAGE,
  {
    key: 'strings',
    root: 'string',
    index: 'string',
    bundle: 'string',
    'min-version': 'string',
    now: 'string',
    'no-build': 'boolean',
  },
  async (args) => {
    const now = args.now === undefined ? new Date() : new Date(args.now);
    if (Number.isNaN(now.getTime())) throw new UsageError('--now must be an ISO-8601 time');
    const minVersion = args['min-version'] === undefined ? undefined : Number(args['min-version']);
    if (minVersion !== undefined && !Number.isSafeInteger(minVersion))
      throw new UsageError('--min-version must be an integer');

    const m = await loadManifestPackage({ build: !args['no-build'] });
    const root = resolveFrom(process.cwd(), args.root ?? repoRoot);
    const keyFiles = (args.key ?? [join(root, m.PUBLIC_KEY_PATH)]).map((k) => resolveFrom(process.cwd(), k));
    const trustedKeys = [];
    for (const file of keyFiles) {
      const pem = await readFile(file, 'utf8').catch((err) => {
        throw new Error(`cannot read the trusted key ${file}: ${err.code ?? err.message}`);
      });
      trustedKeys.push(m.publicKeyOf(pem));
    }

    const catalog = await m.loadCatalog({
      root,
      indexPath: args.index,
      bundlePath: args.bundle,
      trustedKeys,
      highestAcceptedVersion: minVersion,
      now,
    });
    // A manifest on disk that the index does not list would silently be missing from the store.
    const listed = new Set(catalog.index.services.map((s) => s.manifest));
    const onDisk = (await readdir(join(root, m.MANIFESTS_DIR)).catch(() => []))
      .filter((n) => /\.ya?ml$/.test(n))
      .map((n) => `${m.MANIFESTS_DIR}/${n}`);
    const unlisted = onDisk.filter((p) => !listed.has(p));
    if (unlisted.length > 0) {
      process.stderr.write(
        `refused: ${unlisted.join(', ')} ${unlisted.length === 1 ? 'is' : 'are'} not in the signed index; run npm run store:sign\n`,
      );
      return 1;
    }
    process.stdout.write(
      `verified catalog version ${catalog.index.version} (expires ${catalog.index.expires}), signed by ${catalog.signedBy}\n` +
        catalog.index.services
          .map((s) => `  ${s.id.padEnd(10)}${s.version.padEnd(10)}${s.digest}  ${s.manifest}\n`)
          .join(''),
    );
    return 0;
  },
);
