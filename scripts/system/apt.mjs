// Shared helper for scripts/system/*.mjs: install Debian packages with apt-get when missing.
// Not a provider itself (no `ensure` export is used from here).
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export const name = 'apt';
export async function ensure() {
  return { ok: true };
}

let updated = false;

/** True when every command is an executable file on PATH (looked up here, no shell). */
export function haveCommands(...commands) {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return commands.every((c) =>
    dirs.some((d) => {
      try {
        accessSync(join(d, c), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }),
  );
}

/** apt-get install the packages (as root only); returns a reason string on failure, undefined on success. */
export function aptInstall(packages, log) {
  if (process.getuid?.() !== 0) return `not root: cannot apt-get install ${packages.join(' ')}`;
  try {
    if (!updated) {
      log(`apt-get update (for ${packages.join(', ')})`);
      execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update', '-qq'], {
        stdio: 'ignore',
        timeout: 300_000,
      });
      updated = true;
    }
    log(`apt-get install ${packages.join(' ')}`);
    execFileSync(
      'apt-get',
      ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-qq', '--no-install-recommends', ...packages],
      {
        stdio: 'ignore',
        timeout: 600_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
    return undefined;
  } catch (err) {
    return `apt-get install ${packages.join(' ')} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
}
