import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** Where system commands live even when a (non-login, service) PATH leaves them out. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * The absolute path of an executable named `name` on PATH or in the sbin/bin directories, or
 * undefined. The one copy: the cell (ip, wg, caddy…), the runtime (dockerd, docker-registry), the
 * tests and the bench scripts all use it.
 */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const full = join(dir, name);
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {
      // not here
    }
  }
  return undefined;
}
