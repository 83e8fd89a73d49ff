// Builds the web console (packages/console) into packages/console/dist, which the cell serves at /.
// Type-checks it with tsc, then bundles it with Vite. Skipped when nothing it is built from changed:
// dist/.inputs holds the SHA-256 of every input file (sources, configs, the lockfile, this script).
// Text assets get a precompressed `.gz` beside them, which the cell serves as their gzip encoding.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = join(import.meta.dirname, '..');
export const CONSOLE_DIR = join(root, 'packages', 'console');
export const CONSOLE_DIST = join(CONSOLE_DIR, 'dist');
const STAMP = join(CONSOLE_DIST, '.inputs');

function files(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) files(full, out);
    else out.push(full);
  }
  return out;
}

/** One hash over the names and contents of everything the build reads. */
export function consoleInputsHash() {
  const inputs = [
    ...files(join(CONSOLE_DIR, 'src')),
    ...['index.html', 'vite.config.ts', 'package.json', 'tsconfig.json'].map((f) => join(CONSOLE_DIR, f)),
    join(root, 'pnpm-lock.yaml'),
    import.meta.filename, // how it is built (e.g. the precompressed copies) is an input too
  ];
  const h = createHash('sha256');
  for (const f of inputs) h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

/** `x.js` → `x.js.gz` (level 9, once at build time, not on the cell's first request). */
function precompress(dir) {
  for (const f of files(dir)) {
    if (!['.js', '.css', '.html', '.svg'].includes(extname(f))) continue;
    const body = readFileSync(f);
    if (body.length > 1024) writeFileSync(`${f}.gz`, gzipSync(body, { level: 9 }));
  }
}

function run(args, log) {
  const res = spawnSync(process.execPath, args, { cwd: CONSOLE_DIR, stdio: 'inherit' });
  if (res.error) throw res.error;
  if (res.status !== 0) {
    log(`console build failed: node ${args.join(' ')} exited with ${res.status ?? res.signal}`);
    process.exit(res.status ?? 1);
  }
}

export function buildConsole(log = (m) => process.stderr.write(`[pic] ${m}\n`)) {
  const hash = consoleInputsHash();
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === hash && existsSync(join(CONSOLE_DIST, 'index.html')))
    return;
  log('building the web console (packages/console)');
  run([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(CONSOLE_DIR, 'tsconfig.json')], log);
  run([join(CONSOLE_DIR, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], log);
  precompress(CONSOLE_DIST);
  writeFileSync(STAMP, `${hash}\n`);
}

if (process.argv[1] === import.meta.filename) buildConsole();
