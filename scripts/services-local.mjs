#!/usr/bin/env node
// npm run services:local: the one command that gets the first-party services (email, calendar,
// files) to a cell on a machine with no registry reachable. It
//   0. installs docker-registry and debootstrap with apt when missing (as root),
//   1. builds the images (scripts/images/first-party/build.mjs),
//   2. starts a registry (Debian's docker-registry) on 127.0.0.1, its blobs kept under
//      <data dir>/store-local/registry, pushes the images, reads back their digests, and pulls them
//      by digest into the engine (so installing needs no running registry),
//   3. signs a catalog (<data dir>/store-local/catalog) with a local key made once
//      (<data dir>/store-local/store.key.pem, 0600, never leaves the machine),
//   4. tells the cell to use it: cell.yaml store.catalog_dir, and store.trusted_keys naming the
//      local public key, which the cell adds to its trust keys at its next start.
// Then restart the cell (npm start): the store lists the services, signed by the local key.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import {
  UsageError,
  loadManifestPackage,
  loadRuntimePackage,
  repoRoot,
  resolveFrom,
  runMain,
  writeAtomically,
} from './store/lib.mjs';
import { DEFAULT_BUILDER, loadBuilder, publishCatalog } from './store/publish-lib.mjs';
import { aptInstall, haveCommands } from './system/apt.mjs';
import { ensure as ensureRegistryInstalled } from './system/registry.mjs';

const USAGE = `usage: npm run services:local [-- options]

  --data-dir <dir>      the cell's data directory (default $PIC_DATA_DIR, else ./data)
  --service <id>        only this service (repeatable; default: every manifest in manifests/)
  --port <N>            the local registry's port on 127.0.0.1 (default: the one chosen on the first
                        run, kept in <data dir>/store-local/registry.json; a free one the first time)
  --builder <module>    image builder (default scripts/images/first-party/build.mjs)
  --root <dir>          catalog root whose manifests/ are the sources (default: this repository)
  --expires-days <D>    days the local catalog stays valid (default 365; run again to renew)
  --no-build            use packages/*/dist as they are

The engine is cell.yaml's store.engine_socket, else DOCKER_HOST, else /var/run/docker.sock.
`;
const KEY_NAME = 'local-store';
const log = (msg) => process.stderr.write(`[services:local] ${msg}\n`);

await runMain(
  USAGE,
  {
    'data-dir': 'string',
    service: 'strings',
    port: 'string',
    builder: 'string',
    root: 'string',
    'expires-days': 'string',
    'no-build': 'boolean',
  },
  async (args) => {
    const expiresDays = args['expires-days'] === undefined ? 365 : Number(args['expires-days']);
    if (!Number.isInteger(expiresDays) || expiresDays < 1 || expiresDays > 3660)
      throw new UsageError('--expires-days must be a whole number of days, 1 to 3660');
    const portArg = args.port === undefined ? undefined : Number(args.port);
    if (portArg !== undefined && (!Number.isInteger(portArg) || portArg < 1 || portArg > 65535))
      throw new UsageError('--port must be a port number');
    for (const s of args.service ?? [])
      if (!/^[a-z][a-z0-9-]{0,62}$/.test(s)) throw new UsageError(`--service "${s}" is not a service id`);

    const dataDir = resolve(args['data-dir'] ?? (process.env.PIC_DATA_DIR || './data'));
    const local = join(dataDir, 'store-local');
    await mkdir(local, { recursive: true, mode: 0o700 });
    await chmod(local, 0o700);
    const yaml = createRequire(join(repoRoot, 'packages', 'manifest', 'package.json'))('yaml');
    const cellYamlFile = join(dataDir, 'cell.yaml');
    const cellYamlText = existsSync(cellYamlFile) ? await readFile(cellYamlFile, 'utf8') : '';
    const doc = yaml.parseDocument(cellYamlText);
    if (doc.errors.length) throw new Error(`${cellYamlFile} is not valid YAML: ${doc.errors[0].message}`);

    // What this command needs from the system, installed with apt when missing (as root): the
    // registry, and debootstrap for the first-party image builds. Docker itself must be running.
    const registryPart = await ensureRegistryInstalled(log);
    if (!registryPart.ok) log(`docker-registry: ${registryPart.reason}`);
    if (!args.builder && !haveCommands('debootstrap') && !existsSync('/usr/sbin/debootstrap')) {
      const failed = aptInstall(['debootstrap'], log);
      if (failed) log(`debootstrap: ${failed}`);
    }

    const m = await loadManifestPackage({ build: !args['no-build'] });
    const rt = await loadRuntimePackage({ build: !args['no-build'] });

    // The engine the cell itself uses.
    const socket = doc.getIn(['store', 'engine_socket']);
    const runtime = new rt.DockerRuntime({
      cellId: 'pic-services-local',
      socket: typeof socket === 'string' ? socket : undefined,
      dockerHost: process.env.DOCKER_HOST,
    });
    try {
      await runtime.ping();
    } catch (err) {
      throw new Error(
        `no container engine answers at ${runtime.endpoint}: ${err.message}\nInstall and start Docker (see wiki/admin-install-and-first-run.md), then run this again.`,
      );
    }
    const dockerHost = runtime.endpoint;

    // The local signing key: made once, private half 0600 in the data dir, never in the repository.
    const keyFile = join(local, 'store.key.pem');
    const pubFile = join(local, 'store.pub.pem');
    let privateKey;
    if (existsSync(keyFile)) {
      privateKey = m.loadPrivateKey(await readFile(keyFile, 'utf8'));
    } else {
      privateKey = m.generateStoreKeyPair().privateKey;
      await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
      log(`made the local store key ${keyFile}`);
    }
    await chmod(keyFile, 0o600);
    await writeFile(pubFile, m.publicKeyPem(privateKey), { mode: 0o644 });
    const fingerprint = m.keyFingerprint(privateKey);

    // The registry: same port every run, since the catalog's references name it.
    const registryFile = join(local, 'registry.json');
    const saved = existsSync(registryFile) ? JSON.parse(readFileSync(registryFile, 'utf8')) : {};
    const port = portArg ?? (Number.isInteger(saved.port) ? saved.port : await rt.freePort());
    const registry = await rt.startRegistry({ storageDir: join(local, 'registry'), port });
    if ('skip' in registry) {
      throw new Error(
        `${registry.skip}\nInstall it with: apt-get install docker-registry (or run npm test once as root, which installs it).`,
      );
    }
    await writeAtomically(registryFile, `${JSON.stringify({ port }, null, 2)}\n`);
    log(`registry on ${registry.host} (blobs in ${registry.storageDir})`);

    let result;
    try {
      const build = await loadBuilder(args.builder ? resolveFrom(process.cwd(), args.builder) : DEFAULT_BUILDER);
      const catalog = join(local, 'catalog');
      result = await publishCatalog({
        m,
        runtime,
        build,
        registry: registry.host,
        root: resolveFrom(process.cwd(), args.root ?? repoRoot),
        out: catalog,
        services: args.service,
        privateKey,
        dockerHost,
        expiresDays,
        log,
      });
      await writeFile(join(catalog, m.PUBLIC_KEY_PATH), m.publicKeyPem(privateKey), { mode: 0o644 });
      // Pull each image by digest into the engine now: installing then needs no running registry.
      for (const p of result.published) {
        for (const ref of p.images) {
          const byDigest = ref.replace(/:[^/:@]+@/, '@');
          await runtime.pullImage(byDigest);
          log(`${byDigest} is on the engine`);
        }
      }
      result.catalog = catalog;
    } finally {
      await registry.stop();
    }

    // cell.yaml: this catalog, and the local key to trust (added once at the cell's next start).
    if (!doc.contents) doc.contents = doc.createNode({});
    const previousCatalog = doc.getIn(['store', 'catalog_dir']);
    if (typeof previousCatalog === 'string' && resolve(dataDir, previousCatalog) !== result.catalog)
      log(`cell.yaml: store.catalog_dir was ${previousCatalog}; now the local catalog`);
    // Relative: cell.yaml paths are read from the data dir, so the data dir may move.
    doc.setIn(['store', 'catalog_dir'], 'store-local/catalog');
    const keys = doc.getIn(['store', 'trusted_keys']);
    const list = keys && typeof keys.toJSON === 'function' ? keys.toJSON() : [];
    if (!list.some((k) => k?.name === KEY_NAME))
      doc.setIn(
        ['store', 'trusted_keys'],
        doc.createNode([...list, { name: KEY_NAME, file: 'store-local/store.pub.pem' }]),
      );
    await writeAtomically(cellYamlFile, doc.toString(), 0o600);

    process.stdout.write(
      `local catalog version ${result.version} signed (${result.services.map((s) => s.id).join(', ')}; expires ${result.expires})\n` +
        `  catalog   ${result.catalog}\n  key       ${fingerprint} (private half ${keyFile}, 0600)\n  cell.yaml ${cellYamlFile}: store.catalog_dir and store.trusted_keys "${KEY_NAME}"\n` +
        `Restart the cell (npm start): GET /api/store then shows catalog.signed_by ${fingerprint} ("${KEY_NAME}").\n`,
    );
    return 0;
  },
);
