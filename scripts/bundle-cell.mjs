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
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

export const CELL_BUNDLE_DIR = join(import.meta.dirname, '..', 'packages', 'cell', 'bundle');
/** The hash of what the bundle was made from, written last: a bundle without it is incomplete. */
const INPUTS_FILE = join(CELL_BUNDLE_DIR, '.inputs-sha256');

/**
 * A hash of everything the bundle is made from: the compiled packages, the lockfile (the bundled
 * dependencies' versions) and this script. `npm start` with nothing changed skips the bundling,
 * so a running cell's bundle (and a test suite's) is not deleted and rewritten under it.
 */
function inputsHash(root) {
  const hash = createHash('sha256');
  const files = [join(root, 'pnpm-lock.yaml'), import.meta.filename];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.js') || name.endsWith('.json')) files.push(full);
    }
  };
  for (const pkg of readdirSync(join(root, 'packages')).sort()) walk(join(root, 'packages', pkg, 'dist'));
  for (const file of files) hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

export async function bundleCell() {
  const root = join(import.meta.dirname, '..');
  const inputs = inputsHash(root);
  if (existsSync(INPUTS_FILE) && readFileSync(INPUTS_FILE, 'utf8') === inputs) return false;
  rmSync(CELL_BUNDLE_DIR, { recursive: true, force: true });
  const result = await build({
    entryPoints: [join(root, 'packages', 'cell', 'dist', 'main.js')],
    outdir: CELL_BUNDLE_DIR,
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
  writeFileSync(INPUTS_FILE, inputs);
  return true;
}

if (process.argv[1] === import.meta.filename) await bundleCell();
