// Provider: WireGuard's userspace tools for the wireguard module's tests and the e2e tunnel test:
// `wg` (wireguard-tools) configures an interface, `wireguard-go` creates one where the kernel has no
// WireGuard module (the case on our VMs), `ip` (iproute2) assigns addresses and namespaces.
// It only installs; tests still check for /dev/net/tun and root themselves and skip loudly.
import { existsSync } from 'node:fs';
import { aptInstall, haveCommands } from './apt.mjs';

export const name = 'wireguard';

/** Debian puts wg in /usr/bin, but `ip` lives in /usr/sbin, which is not on every PATH. */
const haveIp = () => haveCommands('ip') || existsSync('/usr/sbin/ip') || existsSync('/sbin/ip');

/**
 * Debian packages still missing. `forTests` adds what only the tests use (ping through the tunnel);
 * `npm start` asks for the cell's own needs.
 */
export function missing({ forTests = true } = {}) {
  const out = [];
  if (!haveCommands('wg')) out.push('wireguard-tools');
  if (!haveCommands('wireguard-go')) out.push('wireguard-go');
  if (!haveIp()) out.push('iproute2');
  if (forTests && !haveCommands('ping')) out.push('iputils-ping'); // the e2e test pings through the tunnel
  return out;
}

export async function ensure(log, opts = {}) {
  const needed = missing(opts);
  if (needed.length) {
    const failed = aptInstall(needed, log);
    if (failed) return { ok: false, reason: failed };
  }
  if (!haveCommands('wg')) return { ok: false, reason: "'wg' is still missing after installing wireguard-tools" };
  if (!haveCommands('wireguard-go'))
    return { ok: false, reason: "'wireguard-go' is still missing after installing wireguard-go" };
  if (!existsSync('/dev/net/tun'))
    return { ok: false, reason: '/dev/net/tun is missing: wireguard-go cannot create an interface here' };
  return { ok: true };
}
