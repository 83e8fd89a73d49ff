// How the cell is started everywhere (packages/cell/launch.json): node's flags and the bundle's
// entry. Read by `npm start` (run.mjs) and the bench; test/support/cell-process.ts reads the same file.
// Run directly (`node scripts/cell-launch.mjs`), it supervises an already built cell as `npm start` does.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { checkCellSystem } from './cell-system.mjs';

/** `{ nodeFlags, main }` with `main` an absolute path, for the repository at `root`. */
export function cellLaunch(root) {
  const launch = JSON.parse(readFileSync(join(root, 'packages', 'cell', 'launch.json'), 'utf8'));
  return { nodeFlags: launch.nodeFlags, main: join(root, 'packages', 'cell', launch.main) };
}

/** How often to check that whoever started us is still there. */
const PARENT_CHECK_MS = 500;

/**
 * Checks the system parts the cell needs (cell-system.mjs: installs them where it can), then runs
 * the cell as launch.json says (node flags cannot be given to this process any more),
 * passes SIGTERM/SIGINT/SIGHUP on to it, and ends with its exit code.
 *
 * npm runs a script through `sh -c`; package.json's start script `exec`s node, so npm's signals
 * (SIGINT included, which a waiting shell ignores) reach us directly. Should whoever started us
 * go away without a signal reaching us (a shell in between that dies of it), we would be left
 * running, the cell with us, holding the port: so when our parent goes away, the cell gets a
 * SIGTERM as if it had been sent to us.
 */
export async function superviseCell(root, log = (msg) => process.stderr.write(`[pic] ${msg}\n`)) {
  const problems = await checkCellSystem(root, log);
  if (problems) {
    log('the cell cannot do its job on this machine yet:');
    for (const line of problems) log(line);
    process.exit(1);
  }
  const { nodeFlags, main } = cellLaunch(root);
  const cell = spawn(process.execPath, [...nodeFlags, main], { cwd: root, stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => cell.kill(signal));
  const parent = process.ppid;
  const parentWatch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(parentWatch);
    log(`the process that started the cell (pid ${parent}) is gone: stopping the cell`);
    cell.kill('SIGTERM');
  }, PARENT_CHECK_MS);
  cell.once('error', (err) => {
    log(`could not start the cell: ${err.message}`);
    process.exit(1);
  });
  cell.once('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
}

if (process.argv[1] === import.meta.filename) await superviseCell(join(import.meta.dirname, '..'));
