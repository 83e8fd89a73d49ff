// Bundles the compiled cell (packages/cell/dist/main.js, from tsc) into packages/cell/bundle/,
// which is what `npm start`, the end-to-end tests and the bench run.
//
// Why: a home cell idles most of its life, and most of its idle memory was code: each of the
// ~900 ES modules it loaded kept its whole source text (comments included) and its module
// records in the heap. One minified, tree-shaken bundle holds ~8 MB less at idle (RSS 86 → 78 MB
// on the 2-core machine, see wiki/dev-testing.md). Code loaded on first use (the store's sigstore
// verification, X.509, QR codes, CSV export, the container engine client, the password strength
// estimator's ~400 kB of dictionaries) stays in chunks of its own that load only when that
// feature is used.
//
// The bundle sits at the same depth as dist/ (packages/cell/bundle/), so the few paths the cell
// computes from its own location (package.json for the version, the repo's catalog dir) are unchanged.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

export const CELL_BUNDLE_DIR = join(import.meta.dirname, '..', 'packages', 'cell', 'bundle');
/**
 * What the bundle was made from, written last (a bundle without it is incomplete): the files
 * esbuild read, and one hash over them, the lockfile and this script.
 */
const INPUTS_FILE = join(CELL_BUNDLE_DIR, '.inputs.json');
const ROOT = join(import.meta.dirname, '..');

/**
 * Only the files the bundle was really made from count. Hashing a whole folder once included the
 * console's build output, which appears after the bundle on a fresh clone: the next `npm start`
 * (the launcher test's) then re-bundled, deleting chunks under the cells other tests were running.
 */
export function inputsHash(files) {
  const hash = createHash('sha256');
  for (const file of [join(ROOT, 'pnpm-lock.yaml'), import.meta.filename, ...files]) {
    if (!existsSync(resolve(ROOT, file))) return undefined;
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(resolve(ROOT, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

/** True when the bundle on disk was made from exactly the files as they are now. */
export function bundleIsCurrent() {
  if (!existsSync(INPUTS_FILE)) return false;
  try {
    const recorded = JSON.parse(readFileSync(INPUTS_FILE, 'utf8'));
    return Array.isArray(recorded.files) && inputsHash(recorded.files) === recorded.sha256;
  } catch {
    return false;
  }
}

/**
 * Packages left to Node's loader that the cell must only load on first use: @pic/runtime's index
 * loads dockerode, whose ssh2 instantiates a 16 MB WebAssembly heap (idle RSS 70 → 86 MB).
 */
const LAZY_ONLY = ['@pic/runtime', '@peculiar/x509', 'reflect-metadata'];

/**
 * The external modules loaded at start-up: by main.js, the modules it imports right away (server.js
 * or vpn-cli.js, dynamic only so that a flag is set first), and everything they import statically.
 */
function eagerlyImported(metafile) {
  const outputs = metafile.outputs;
  const entry = Object.keys(outputs).find((o) => outputs[o].entryPoint?.endsWith('dist/main.js'));
  const seen = new Set();
  const external = new Set();
  const visit = (out, isEntry = false) => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const imp of outputs[out]?.imports ?? []) {
      if (imp.kind !== 'import-statement' && !isEntry) continue; // dynamic imports load on first use
      if (imp.external) external.add(imp.path);
      else visit(imp.path);
    }
  };
  if (entry) visit(entry, true);
  return external;
}

export async function bundleCell() {
  const root = ROOT;
  if (bundleIsCurrent()) return false;
  rmSync(CELL_BUNDLE_DIR, { recursive: true, force: true });
  const result = await build({
    entryPoints: [join(root, 'packages', 'cell', 'dist', 'main.js')],
    outdir: CELL_BUNDLE_DIR,
    absWorkingDir: root, // the metafile's input paths are relative to the repo
    bundle: true,
    splitting: true, // dynamic imports become chunks loaded on first use
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    // identifiers are kept: a stack trace in the log names the cell's own functions
    // no keepNames: it wraps every closure the server creates per request in a defineProperty call (a third slower)
    sourcemap: 'linked',
    legalComments: 'linked',
    // Left to Node's own loader: native addons (better-sqlite3, a dependency of the cell, so it
    // resolves from here; ssh2's optional natives), and @pic/runtime, the container engine client,
    // whose dockerode reads .proto files next to its own code at run time, and the X.509 stack,
    // whose CommonJS exports and decorator metadata need Node's own interop. Both load on first use.
    external: ['better-sqlite3', '@pic/runtime', '@peculiar/*', 'reflect-metadata', 'cpu-features', '*.node'],
    // CommonJS dependencies inside an ES module bundle still call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __picRequire } from 'node:module'; const require = __picRequire(import.meta.url);",
    },
    logLevel: 'warning',
    metafile: true,
  });
  // Test code (unit tests and their *.test-support.ts helpers) is compiled into dist/ beside the
  // product, but must never be part of it: a product module importing one fails the build here.
  const leaked = Object.keys(result.metafile.inputs).filter((f) => /\.test(-support)?\.js$/.test(f));
  if (leaked.length) throw new Error(`the cell bundle would include test code: ${leaked.join(', ')}`);
  const eager = eagerlyImported(result.metafile);
  const heavy = LAZY_ONLY.filter((name) => eager.has(name));
  if (heavy.length) {
    throw new Error(
      `the cell would load ${heavy.join(', ')} at start-up: import it with import() where it is used ` +
        '(or from a subpath that does not load it, e.g. @pic/runtime/executable)',
    );
  }
  // esbuild's own virtual inputs (none today) name no file and cannot be hashed
  const files = Object.keys(result.metafile.inputs)
    .filter((f) => existsSync(resolve(root, f)))
    .sort();
  writeFileSync(INPUTS_FILE, JSON.stringify({ sha256: inputsHash(files), files }));
  return true;
}

if (process.argv[1] === import.meta.filename) await bundleCell();
