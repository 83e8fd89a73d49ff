// Provider: a real image registry for the store's tests and `npm run services:local`: Debian's
// docker-registry (the distribution registry, 2.8). It only installs; it never leaves a registry
// running. Tests start their own on 127.0.0.1:<free port> (packages/runtime/src/registry.ts) and
// stop it when they end. The package's own systemd unit is not started (policy-rc.d on our VMs).
import { existsSync } from 'node:fs';
import { aptInstall, haveCommands } from './apt.mjs';

export const name = 'registry';

const haveRegistry = () => haveCommands('docker-registry') || existsSync('/usr/bin/docker-registry');

export async function ensure(log) {
  if (!haveRegistry()) {
    const failed = aptInstall(['docker-registry'], log);
    if (failed) return { ok: false, reason: failed };
  }
  if (!haveRegistry()) return { ok: false, reason: 'docker-registry is still missing after installing it' };
  return { ok: true };
}
