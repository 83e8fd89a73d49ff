/**
 * Test support for the wireguard module and the tunnel e2e test (imported from dist by the latter):
 * throwaway network namespaces, unique interface names, and the reason a machine cannot run them.
 * Not used by the cell itself.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { findExecutable, isNetnsName } from './commands.js';

/** Why tunnel tests cannot run here (name it in t.skip), or undefined when they can. */
export function wireguardTestSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform}): no network namespaces`;
  if (process.getuid?.() !== 0) return 'not root: creating network namespaces and interfaces needs root';
  const missing = ['ip', 'wg', 'wireguard-go'].filter((c) => !findExecutable(c));
  if (missing.length)
    return `missing commands: ${missing.join(', ')} (scripts/system/wireguard.mjs installs them with apt-get)`;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing: wireguard-go cannot create an interface';
  return undefined;
}

/** A name no other test run on this machine uses at the same time (≤ 15 characters for interfaces). */
export function uniqueName(prefix: string): string {
  return (prefix + randomBytes(4).toString('hex')).slice(0, 15);
}

/** Runs a command (argument array, no shell) and resolves with stdout; rejects with stderr. */
export function run(file: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${[file, ...args].join(' ')}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

const ip = () => {
  const path = findExecutable('ip');
  if (!path) throw new Error("'ip' is missing");
  return path;
};

/** `ip netns exec <ns> <command…>`, resolving the command's absolute path first. */
export function runIn(netns: string, command: string, args: string[], timeoutMs?: number): Promise<string> {
  const path = findExecutable(command);
  if (!path) return Promise.reject(new Error(`'${command}' is missing`));
  return run(ip(), ['netns', 'exec', netns, path, ...args], timeoutMs);
}

/** Spawns a long-running command inside a namespace (e.g. a client's wireguard-go -f). */
export function spawnIn(netns: string, command: string, args: string[]): ChildProcess {
  const path = findExecutable(command);
  if (!path) throw new Error(`'${command}' is missing`);
  return spawn(ip(), ['netns', 'exec', netns, path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function createNetns(prefix = 'picwg'): Promise<string> {
  const name = uniqueName(prefix);
  if (!isNetnsName(name)) throw new Error(`bad namespace name ${name}`);
  await run(ip(), ['netns', 'add', name]);
  await run(ip(), ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Deletes a namespace; quietly does nothing when it is already gone. */
export async function deleteNetns(name: string): Promise<void> {
  try {
    await run(ip(), ['netns', 'delete', name]);
  } catch (err) {
    if (!/No such file|Cannot remove namespace file/.test(String(err))) throw err;
  }
}

/**
 * Joins two namespaces with a veth pair and gives each end an address (a /24 in 10.0.0.0/8 that
 * exists only inside these namespaces). Returns the two ends' addresses.
 */
export async function joinWithVeth(a: string, b: string, subnetPrefix: string): Promise<{ a: string; b: string }> {
  const endA = uniqueName('pva');
  const endB = uniqueName('pvb');
  await run(ip(), ['link', 'add', endA, 'netns', a, 'type', 'veth', 'peer', 'name', endB, 'netns', b]);
  await run(ip(), ['-n', a, 'address', 'add', `${subnetPrefix}.1/24`, 'dev', endA]);
  await run(ip(), ['-n', b, 'address', 'add', `${subnetPrefix}.2/24`, 'dev', endB]);
  await run(ip(), ['-n', a, 'link', 'set', endA, 'up']);
  await run(ip(), ['-n', b, 'link', 'set', endB, 'up']);
  return { a: `${subnetPrefix}.1`, b: `${subnetPrefix}.2` };
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * A peer's wireguard-go (-f, in `netns`) whose control socket answers `wg show`. Started again when
 * it exits at once, as the cell's own interface is (interface.ts says why); fails with its output
 * when it never comes up. `output` keeps what it printed.
 */
export async function startWireGuardGoIn(
  netns: string,
  name: string,
  attempts = 3,
): Promise<{ child: ChildProcess; output: () => string }> {
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const child = spawnIn(netns, 'wireguard-go', ['-f', name]);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 5_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      try {
        await runIn(netns, 'wg', ['show', name]);
        return { child, output: () => output };
      } catch (err) {
        if (Date.now() > deadline) {
          await stopChild(child);
          throw new Error(`wireguard-go ${name} did not open its control socket in 5 s: ${output || String(err)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    last = `exited at start (${child.exitCode ?? child.signalCode}): ${output.trim() || 'no output'}`;
    await new Promise((r) => setTimeout(r, 250 * attempt));
  }
  throw new Error(`wireguard-go ${name} ${last} (${attempts} attempts)`);
}
