#!/usr/bin/env node
// The one entry behind `npm start`, `npm test`, `npm run bench`, `npm run build` and `npm run services:local`:
// installs what is missing (pnpm through npx, no global install), builds the TypeScript, then runs.
// Nothing here goes through a shell: every child is spawned with an argument array.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cellLaunch, superviseCell } from './cell-launch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@9.15.9';
const log = (msg) => process.stderr.write(`[pic] ${msg}\n`);

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (res.error) throw res.error;
  if (res.status !== 0) {
    log(`${cmd} ${args.join(' ')} exited with ${res.status ?? res.signal}`);
    process.exit(res.status ?? 1);
  }
}

function read(file) {
  try {
    return readFileSync(join(root, file), 'utf8');
  } catch {
    return undefined;
  }
}

/** pnpm keeps a copy of the lockfile it installed; a difference means node_modules is stale. */
export function ensureInstalled() {
  const wanted = read('pnpm-lock.yaml');
  const installed = read('node_modules/.pnpm/lock.yaml');
  if (wanted && installed === wanted) return;
  log('installing dependencies with pnpm (first run compiles better-sqlite3, about a minute)');
  run('npx', ['-y', PNPM, 'install', '--frozen-lockfile', '--prefer-offline'], {
    env: { ...process.env, npm_config_yes: 'true', COREPACK_ENABLE_STRICT: '0' },
  });
}

export async function build() {
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.json']);
  // What `npm start`, the end-to-end tests and the bench run: see scripts/bundle-cell.mjs for why.
  const { bundleCell } = await import('./bundle-cell.mjs');
  await bundleCell();
  // The web console the cell serves at / (skipped when its inputs are unchanged).
  const { buildConsole } = await import('./build-console.mjs');
  buildConsole(log);
}

function findTests(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

function testFiles(filters) {
  const dirs = [
    ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'dist')),
    join(root, 'test', 'dist'),
  ];
  const files = dirs.flatMap((d) => findTests(d)).sort();
  return filters.length ? files.filter((f) => filters.some((flt) => relative(root, f).includes(flt))) : files;
}

/** Formatter and linter in one (biome.jsonc): clean means no error, no warning, nothing unformatted. */
function lint() {
  run(process.execPath, [join(root, 'node_modules/@biomejs/biome/bin/biome'), 'check', '--error-on-warnings', '.']);
}

const [command = 'start', ...rest] = process.argv.slice(2);
ensureInstalled();
// `npm test` lints first: a format or lint problem fails in a second, before the build and the suite.
if (command === 'lint' || command === 'test') lint();
if (command === 'lint') process.exit(0);
await build();

if (command === 'build') {
  process.exit(0);
} else if (command === 'start') {
  await superviseCell(root, log);
} else if (command === 'test') {
  run(process.execPath, [join(root, 'scripts/system-deps.mjs')]);
  const files = testFiles(rest);
  if (files.length === 0) {
    log('no test files found');
    process.exit(1);
  }
  run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
    env: { ...process.env, PIC_REPO_ROOT: root },
  });
} else if (command === 'services-local') {
  // npm run services:local: dependencies installed and the workspace built above, so a fresh clone works.
  run(process.execPath, [join(root, 'scripts/services-local.mjs'), '--no-build', ...rest]);
} else if (command === 'vpn') {
  // the cell's own CLI (packages/cell/src/vpn-cli.ts): `npm run vpn -- down`
  const { nodeFlags, main } = cellLaunch(root);
  run(process.execPath, [...nodeFlags, main, 'vpn', ...rest]);
} else if (command === 'bench') {
  run(process.execPath, [join(root, 'scripts/bench/index.mjs'), ...rest]);
} else {
  log(`unknown command "${command}": use start, test, lint, bench, build, services-local or vpn`);
  process.exit(2);
}
