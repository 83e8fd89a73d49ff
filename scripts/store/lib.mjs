// Shared by the store maintainer scripts: argument parsing, the repo root, and loading
// @pic/manifest from packages/manifest/dist (built first, so the scripts never run stale code).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
    if (kind === 'strings') (out[name] ??= []).push(value);
    else out[name] = value;
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
    const res = spawnSync(process.execPath, [tsc, '-b', join(repoRoot, 'packages', 'manifest', 'tsconfig.json')], { cwd: repoRoot, stdio: ['ignore', 2, 2] });
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

/** Runs a script's main: usage errors exit 2 with the usage text, refusals and failures exit 1. */
export async function runMain(usage, main) {
  try {
    process.exitCode = (await main()) ?? 0;
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
