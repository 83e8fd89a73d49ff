// Provider: what the cell runs to be reached by name over the tunnel (issue 14): Caddy (Debian's
// caddy, the HTTPS front), dnsmasq (dnsmasq-base, the resolver on the tunnel address), and curl
// for the e2e test's client. It only installs; the cell starts them (features/caddy, features/dns),
// and the e2e test skips loudly, naming the package, when one is missing.
import { existsSync } from 'node:fs';
import { aptInstall, haveCommands } from './apt.mjs';

export const name = 'reach';

/** dnsmasq lives in /usr/sbin, which is not on every PATH. */
const haveDnsmasq = () => haveCommands('dnsmasq') || existsSync('/usr/sbin/dnsmasq');

export async function ensure(log) {
  const missing = [];
  if (!haveCommands('caddy')) missing.push('caddy');
  if (!haveDnsmasq()) missing.push('dnsmasq-base');
  if (!haveCommands('curl')) missing.push('curl');
  if (missing.length) {
    const failed = aptInstall(missing, log);
    if (failed) return { ok: false, reason: failed };
  }
  if (!haveCommands('caddy')) return { ok: false, reason: "'caddy' is still missing after installing caddy" };
  if (!haveDnsmasq()) return { ok: false, reason: "'dnsmasq' is still missing after installing dnsmasq-base" };
  return { ok: true };
}
