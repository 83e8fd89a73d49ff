// How the cell is started everywhere (packages/cell/launch.json): node's flags and the bundle's
// entry. Read by `npm start` (run.mjs) and the bench; test/support/cell-process.ts reads the same file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `{ nodeFlags, main }` with `main` an absolute path, for the repository at `root`. */
export function cellLaunch(root) {
  const launch = JSON.parse(readFileSync(join(root, 'packages', 'cell', 'launch.json'), 'utf8'));
  return { nodeFlags: launch.nodeFlags, main: join(root, 'packages', 'cell', launch.main) };
}
