// Shared by the store maintainer scripts: argument parsing, the repo root, and loading
// @pic/manifest from packages/manifest/dist (built first, so the scripts never run stale code).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Environment variable holding the passphrase of an encrypted store key, if the key has one. */
export const PASSPHRASE_ENV = 'PIC_STORE_KEY_PASSPHRASE';

export class UsageError extends Error {}

/**
 * `--name value` and `--flag` arguments. `spec` maps each known option to 'string', 'strings'
 * (repeatable) or 'boolean'; anything else is a usage error.
 */
export function parseArgs(argv, spec) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq > 0 ? eq : undefined) : undefined;
    const kind = name && spec[name];
    if (!kind) throw new UsageError(`unknown argument "${arg}"`);
    if (kind === 'boolean') {
      out[name] = true;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (kind === 'strings') {
      out[name] ??= [];
      out[name].push(value);
    } else out[name] = value;
  }
  return out;
}

export function resolveFrom(base, path) {
  return isAbsolute(path) ? path : join(base, path);
}

export function isInside(dir, path) {
  const rel = relative(resolve(dir), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Builds packages/manifest (`tsc -b` of that project only, no shell, so another package's
 * half-done work cannot block the store tools) unless skipped, then imports it.
 */
export async function loadManifestPackage({ build = true } = {}) {
  if (build) {
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!existsSync(tsc)) throw new Error('dependencies are not installed: run "npm run build" once first');
    const res = spawnSync(process.execPath, [tsc, '-b', join(repoRoot, 'packages', 'manifest', 'tsconfig.json')], {
      cwd: repoRoot,
      stdio: ['ignore', 2, 2],
    });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`building packages/manifest failed (exit ${res.status ?? res.signal})`);
  }
  const entry = join(repoRoot, 'packages', 'manifest', 'dist', 'index.js');
  try {
    return await import(pathToFileURL(entry).href);
  } catch (err) {
    throw new Error(`cannot load ${entry} (${err.code ?? err.message}): run "npm run build" first`);
  }
}

/** Builds packages/runtime (unless skipped) and imports it: the engine client the image tools use. */
export async function loadRuntimePackage({ build = true } = {}) {
  if (build) {
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    if (!existsSync(tsc)) throw new Error('dependencies are not installed: run "npm run build" once first');
    const res = spawnSync(process.execPath, [tsc, '-b', join(repoRoot, 'packages', 'runtime', 'tsconfig.json')], {
      cwd: repoRoot,
      stdio: ['ignore', 2, 2],
    });
    if (res.error) throw res.error;
    if (res.status !== 0) throw new Error(`building packages/runtime failed (exit ${res.status ?? res.signal})`);
  }
  const entry = join(repoRoot, 'packages', 'runtime', 'dist', 'index.js');
  try {
    return await import(pathToFileURL(entry).href);
  } catch (err) {
    throw new Error(`cannot load ${entry} (${err.code ?? err.message}): run "npm run build" first`);
  }
}

/** Runs a script's main: usage errors exit 2 with the usage text, refusals and failures exit 1. */
/**
 * A script's main: parses argv by `spec` (`--help` is always known: prints `usage`, exit 0), runs
 * `main(args)` and turns its errors into a message and an exit code (2 for a usage error).
 */
export async function runMain(usage, spec, main) {
  try {
    const args = parseArgs(process.argv.slice(2), { ...spec, help: 'boolean' });
    if (args.help) {
      process.stdout.write(usage);
      return;
    }
    process.exitCode = (await main(args)) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${usage}`);
      process.exitCode = 2;
    } else if (err?.name === 'CatalogRefusal') {
      process.stderr.write(`refused (${err.code}): ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`${err?.message ?? err}\n`);
      process.exitCode = 1;
    }
  }
}

/** Reads a store private key (PEM; an encrypted one takes its passphrase from $PIC_STORE_KEY_PASSPHRASE). */
export async function loadPrivateKeyFile(m, keyFile) {
  const keyPem = await readFile(keyFile, 'utf8').catch((err) => {
    throw new Error(`cannot read the key ${keyFile}: ${err.code ?? err.message}`);
  });
  try {
    return m.loadPrivateKey(keyPem, process.env[PASSPHRASE_ENV] || undefined);
  } catch (err) {
    throw new Error(`${keyFile} is not a usable store private key: ${err.message}`);
  }
}

/**
 * Signs a catalog root: every manifest under <root>/manifests, validated and digested from its
 * canonical bytes, into a new index (version above the current one, or `requestedVersion`, which
 * must be higher) and its sigstore bundle, checked before either file is written.
 */
export async function signCatalog(m, { root, indexFile, bundleFile, privateKey, requestedVersion, expiresDays = 90 }) {
  const manifestsDir = join(root, m.MANIFESTS_DIR);
  const names = (await readdir(manifestsDir).catch(() => [])).filter((n) => /\.ya?ml$/.test(n)).sort();
  if (names.length === 0) throw new Error(`no manifests in ${manifestsDir}`);
  const services = [];
  for (const name of names) {
    const path = `${m.MANIFESTS_DIR}/${name}`;
    const manifest = m.parseManifest(await readFile(join(manifestsDir, name)), path);
    const clash = services.find((s) => s.id === manifest.id);
    if (clash) throw new Error(`${path} and ${clash.manifest} both declare id "${manifest.id}"`);
    services.push(m.indexEntryFor(manifest, path));
  }
  services.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Versions only go up: a cell refuses anything below the highest it has accepted.
  const previous = await readFile(indexFile, 'utf8').then(
    (text) => {
      try {
        return JSON.parse(text);
      } catch {
        return undefined;
      }
    },
    () => undefined,
  );
  const previousVersion = Number.isSafeInteger(previous?.version) ? previous.version : 0;
  const version = requestedVersion ?? previousVersion + 1;
  if (version <= previousVersion)
    throw new Error(`--version ${version} must be greater than the current index version ${previousVersion}`);

  const expires = new Date(Date.now() + expiresDays * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const index = { version, expires, services };
  const { bundle } = await m.signIndex(index, privateKey);
  const indexText = `${JSON.stringify(index, null, 2)}\n`;
  // Check what is about to be written before writing it.
  const verified = m.verifyIndex(indexText, bundle, [privateKey]);
  await writeAtomically(indexFile, indexText);
  await writeAtomically(bundleFile, `${JSON.stringify(bundle, null, 2)}\n`);
  return { version, expires, services, verified };
}

export async function writeAtomically(file, text, mode = 0o644) {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, file);
}
