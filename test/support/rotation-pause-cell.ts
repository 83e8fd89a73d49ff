/**
 * A cell entry point for the vault crash tests (test/e2e/vault-rotation.test.ts): the real cell
 * (packages/cell/dist/server.js, unbundled) with a vault hook that stops a key rotation for good at
 * the point named in PIC_TEST_VAULT_ROTATION_PAUSE (`midway` or `committed`) and says so on stdout,
 * so the test can SIGKILL the process exactly there. The product has no such switch.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CellHooks } from '../../packages/cell/src/cell.js';
import { REPO_ROOT } from './cell-process.js';

export const ROTATION_PAUSE_CELL = join(import.meta.dirname, 'rotation-pause-cell.js');

const pauseAt = process.env['PIC_TEST_VAULT_ROTATION_PAUSE'];
// Only when run as the process entry (the test imports this module for ROTATION_PAUSE_CELL).
if (process.argv[1] === ROTATION_PAUSE_CELL) {
  const server = (await import(pathToFileURL(join(REPO_ROOT, 'packages/cell/dist/server.js')).href)) as {
    serve(hooks: CellHooks): void;
  };
  server.serve({
    vault: {
      async rotationPoint(point) {
        if (point !== pauseAt) return;
        process.stdout.write(`PIC_TEST vault rotation paused: ${point}\n`);
        await new Promise<never>(() => undefined);
      },
    },
  });
}
