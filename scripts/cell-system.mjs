// What `npm start` checks (and installs, where it can) before it starts the cell: the system parts
// the cell needs to do its job, today WireGuard's tools for the VPN. The same provider as `npm test`
// (scripts/system/wireguard.mjs) does the installing. The store's container engine is optional and
// the admin's to run (wiki/admin-install-and-first-run.md, "A container engine for the store").
//
// When a part is missing and cannot be installed, the cell does not start: it names what is
// missing and the command that installs it, and how to start without that part on purpose.
//
// PIC_SYSTEM_INSTALL=no only checks (no apt-get); PIC_WIREGUARD_MODE=off (or `wireguard: mode: off`
// in cell.yaml) starts a cell without a VPN, and nothing is checked for it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import * as wireguard from './system/wireguard.mjs';

/** cell.yaml as the cell will read it (the cell validates it properly; here only wireguard.mode matters). */
function readCellYaml(root, env) {
  const file = join(resolve(env.PIC_DATA_DIR || './data'), 'cell.yaml');
  if (!existsSync(file)) return {};
  try {
    const { parse } = createRequire(join(root, 'packages', 'cell', 'package.json'))('yaml');
    const parsed = parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {}; // the cell itself reports a broken cell.yaml, with the key at fault
  }
}

/** CAP_NET_ADMIN (bit 12) in this process's effective capabilities: what creating an interface takes. */
function hasNetAdmin() {
  if (process.getuid?.() === 0) return true;
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 12n)) !== 0n;
  } catch {
    return false;
  }
}

/**
 * Checks (and installs where allowed) what the configured cell needs. Returns undefined when it
 * can start, else the lines of a message that says what is missing and how to get it.
 */
export async function checkCellSystem(root, log, env = process.env) {
  const yaml = readCellYaml(root, env);
  const install = env.PIC_SYSTEM_INSTALL !== 'no';
  const problems = [];
  const mode = env.PIC_WIREGUARD_MODE || yaml.wireguard?.mode || 'auto';
  if (mode === 'off') {
    log('WireGuard is off (mode "off"): the cell starts without its VPN');
  } else {
    const missing = wireguard.missing({ forTests: false });
    let reason;
    if (missing.length && install) reason = (await wireguard.ensure(log, { forTests: false })).reason;
    const still = wireguard.missing({ forTests: false });
    if (still.length) {
      problems.push(
        `the VPN needs ${still.join(', ')}, which ${still.length > 1 ? 'are' : 'is'} not installed` +
          (reason ? ` (installing failed: ${reason})` : install ? '' : ' (PIC_SYSTEM_INSTALL=no: not installing)'),
        `  install: sudo apt-get install --no-install-recommends ${still.join(' ')}`,
      );
    } else if (!hasNetAdmin()) {
      problems.push(
        'the VPN needs root (or CAP_NET_ADMIN) to create its WireGuard interface',
        '  start the cell as root',
      );
    } else if (!existsSync('/dev/net/tun') && !existsSync('/sys/module/wireguard')) {
      problems.push(
        "the VPN needs /dev/net/tun (for wireguard-go) or the kernel's WireGuard module; this machine has neither",
      );
    }
    if (problems.length)
      problems.push('  or start the cell without a VPN on purpose: PIC_WIREGUARD_MODE=off npm start');
  }
  return problems.length ? problems : undefined;
}
