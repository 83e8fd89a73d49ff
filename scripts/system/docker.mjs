// Provider: a container engine for the runtime and store tests (Docker's dockerd from Debian's
// docker.io) and a static busybox (busybox-static) the test service image is assembled from.
// It only installs; it never leaves a daemon running. Each test run starts its own private dockerd
// (packages/runtime/src/testing/docker-engine.ts) and stops it when the run ends.
import { existsSync } from 'node:fs';
import { aptInstall, haveCommands } from './apt.mjs';

export const name = 'docker';

/** dockerd lives in /usr/sbin, which is not on every PATH; look there too. */
function haveDockerd() {
  return (
    haveCommands('dockerd') ||
    ['/usr/sbin/dockerd', '/usr/bin/dockerd', '/usr/local/bin/dockerd'].some((p) => existsSync(p))
  );
}

export async function ensure(log) {
  if (process.env.PIC_TEST_DOCKER_HOST) return { ok: true }; // an engine managed elsewhere (e.g. CI)
  const missing = [];
  if (!haveDockerd()) missing.push('docker.io');
  // busybox-static replaces a dynamic busybox if there is one; the image needs the static binary.
  if (!existsSync('/bin/busybox') || !isBusyboxStatic()) missing.push('busybox-static');
  if (missing.length) {
    const failed = aptInstall(missing, log);
    if (failed) return { ok: false, reason: failed };
  }
  if (!haveDockerd()) return { ok: false, reason: 'dockerd is still missing after installing docker.io' };
  if (!haveCommands('ip'))
    return { ok: false, reason: "the 'ip' command (iproute2) is missing: the test engine needs it for its bridge" };
  return { ok: true };
}

/** Debian's busybox-static package is what puts a static /bin/busybox there. */
function isBusyboxStatic() {
  return existsSync('/usr/share/doc/busybox-static') || existsSync('/var/lib/dpkg/info/busybox-static.list');
}
