import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { findExecutable } from '../executable.js';
import { LABEL_CELL } from '../types.js';

/**
 * A private Docker daemon for the test run, shared by every test process of the run.
 *
 * node's test runner runs test files in parallel processes, so the daemon is shared, not per file:
 * each user registers a file in <runDir>/users, all under a mkdir lock; the first user starts dockerd
 * (detached, so it outlives the process that started it), the last one to stop() stops it. Users
 * whose process died are pruned. The data-root lives at a fixed path and is kept between runs, so
 * images loaded once stay cached; containers, networks and volumes a crashed run left behind (anything
 * labelled pic.cell) are removed whenever a fresh daemon starts.
 *
 * The daemon gets its own bridge device and address pool and leaves iptables alone, so it does not
 * collide with another dockerd (its docker0, its 172.17+/16 pools, its DOCKER chains) on the machine.
 */

export interface DockerEngine {
  /** The engine's unix socket. */
  socketPath: string;
  /** The same as DOCKER_HOST (`unix://…`), for child processes such as a cell under test. */
  dockerHost: string;
  /** True when this call started the daemon (false: reused a running one, or an external engine). */
  started: boolean;
  /** Set when PIC_TEST_DOCKER_HOST named an engine managed elsewhere; stop() leaves it alone. */
  external: boolean;
  /** Unregisters this user; the last user stops the daemon. Safe to call more than once. */
  stop(): Promise<void>;
}

export type DockerEngineStart = DockerEngine | { skip: string };

export interface DockerEngineOptions {
  /** Socket, pid file, lock and users (tmpfs: cleared on reboot). Default /run/pic-test-docker. */
  runDir?: string;
  /** Data-root (image cache) and the daemon log. Default $PIC_TEST_DOCKER_DIR or /var/tmp/pic-docker. */
  stateDir?: string;
  /** The daemon's own bridge device and address pool; DEFAULT_NETWORK when omitted. */
  network?: EngineNetwork;
  startTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface EngineNetwork {
  /** A bridge device created for the daemon (at most 15 characters). */
  bridge: string;
  /** Address of the bridge, CIDR: the default network's gateway. */
  bridgeAddress: string;
  /** dockerd --default-address-pool value, for user-defined networks. */
  addressPool: string;
  /**
   * Let dockerd manage iptables (default false). Two dockerds in one network namespace rewrite each
   * other's DOCKER chains at start-up (seen here: "Unable to enable SKIP DNAT rule … No chain"), and
   * tests need none of it: ports published on 127.0.0.1 go through docker-proxy, and containers on
   * a bridge reach each other without NAT.
   */
  iptables?: boolean;
}

/** Unusual ranges, away from Docker's 172.17+/16 defaults and common VPN subnets. */
export const DEFAULT_NETWORK: EngineNetwork = {
  bridge: 'pic-test0',
  bridgeAddress: '10.221.0.1/24',
  addressPool: 'base=10.222.0.0/16,size=24',
};
const LOCK_WAIT_MS = 120_000;

let userCounter = 0;

export async function startDockerEngine(options: DockerEngineOptions = {}): Promise<DockerEngineStart> {
  const log = options.log ?? ((msg: string) => process.stderr.write(`[docker-engine] ${msg}\n`));

  const external = process.env['PIC_TEST_DOCKER_HOST'];
  if (external) return useExternalEngine(external);

  if (process.getuid?.() !== 0)
    return { skip: 'not root: a private dockerd needs root (or set PIC_TEST_DOCKER_HOST to an engine you run)' };
  const dockerd = findExecutable('dockerd');
  if (!dockerd)
    return { skip: 'dockerd is not installed (scripts/system/docker.mjs installs docker.io on `npm test`)' };

  const runDir = options.runDir ?? '/run/pic-test-docker';
  const stateDir = options.stateDir ?? process.env['PIC_TEST_DOCKER_DIR'] ?? '/var/tmp/pic-docker';
  const paths = enginePaths(runDir, stateDir);
  const network = options.network ?? DEFAULT_NETWORK;
  try {
    mkdirSync(paths.users, { recursive: true });
    mkdirSync(paths.dataRoot, { recursive: true });
  } catch (err) {
    return { skip: `cannot prepare the engine's directories: ${err instanceof Error ? err.message : String(err)}` };
  }

  const user = join(paths.users, `${process.pid}-${++userCounter}-${randomBytes(3).toString('hex')}`);
  let started = false;
  const release = await acquireLock(paths.lock);
  try {
    writeFileSync(user, `${process.pid}\n`);
    pruneDeadUsers(paths.users);
    if (!(await ping(paths.socket))) {
      const failure = await startDaemon(dockerd, paths, network, options.startTimeoutMs ?? 60_000, log);
      if (failure) {
        rmSync(user, { force: true });
        return { skip: failure };
      }
      started = true;
      await removeLeftovers(paths.socket, log);
    }
  } catch (err) {
    rmSync(user, { force: true });
    return { skip: `could not start dockerd: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    release();
  }

  // If the process ends without stop() (a crash, a forgotten after()), at least unregister, and stop
  // the daemon when nobody else uses it; there is no time to wait for it here.
  const onExit = () => {
    if (!existsSync(user)) return;
    rmSync(user, { force: true });
    if (liveUsers(paths.users).length === 0) signalDaemon(paths.pidFile, 'SIGTERM');
  };
  process.once('exit', onExit);

  let stopping: Promise<void> | undefined;
  return {
    socketPath: paths.socket,
    dockerHost: `unix://${paths.socket}`,
    started,
    external: false,
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', onExit);
        const unlock = await acquireLock(paths.lock);
        try {
          rmSync(user, { force: true });
          pruneDeadUsers(paths.users);
          if (liveUsers(paths.users).length === 0) await stopDaemon(paths, network, log);
        } finally {
          unlock();
        }
      })();
      return stopping;
    },
  };
}

async function useExternalEngine(dockerHost: string): Promise<DockerEngineStart> {
  const socketPath = dockerHost.replace(/^unix:\/\//, '');
  if (!socketPath.startsWith('/'))
    return { skip: `PIC_TEST_DOCKER_HOST must be a unix socket (unix:///path), got ${dockerHost}` };
  if (!(await ping(socketPath))) return { skip: `PIC_TEST_DOCKER_HOST=${dockerHost} does not answer /_ping` };
  return { socketPath, dockerHost: `unix://${socketPath}`, started: false, external: true, stop: async () => {} };
}

interface EnginePaths {
  socket: string;
  pidFile: string;
  execRoot: string;
  configFile: string;
  lock: string;
  users: string;
  dataRoot: string;
  logFile: string;
}

export function enginePaths(runDir: string, stateDir: string): EnginePaths {
  return {
    socket: join(runDir, 'docker.sock'),
    pidFile: join(runDir, 'dockerd.pid'),
    execRoot: join(runDir, 'exec'),
    configFile: join(runDir, 'daemon.json'),
    lock: join(runDir, 'lock'),
    users: join(runDir, 'users'),
    dataRoot: join(stateDir, 'data'),
    logFile: join(stateDir, 'dockerd.log'),
  };
}

/** Starts dockerd and waits for /_ping; returns a skip reason (with the log tail) when it cannot. */
async function startDaemon(
  dockerd: string,
  paths: EnginePaths,
  network: EngineNetwork,
  timeoutMs: number,
  log: (msg: string) => void,
): Promise<string | undefined> {
  // A daemon from an earlier run that no longer answers: end it before starting another on its files.
  if (daemonPid(paths.pidFile) !== undefined) {
    log('a dockerd from an earlier run is not answering; stopping it');
    await terminate(paths.pidFile, 15_000);
  }
  rmSync(paths.socket, { force: true });

  const bridgeFailure = ensureBridge(network);
  if (bridgeFailure) return bridgeFailure;
  const fail = (reason: string) => {
    deleteBridge(network.bridge);
    return `${reason}; log tail (${paths.logFile}):\n${logTail(paths.logFile)}`;
  };

  // Its own (empty) config file, so a host /etc/docker/daemon.json cannot contradict these flags.
  writeFileSync(paths.configFile, '{}\n');
  const args = [
    `--host=unix://${paths.socket}`,
    `--data-root=${paths.dataRoot}`,
    `--exec-root=${paths.execRoot}`,
    `--pidfile=${paths.pidFile}`,
    `--config-file=${paths.configFile}`,
    `--bridge=${network.bridge}`,
    `--default-address-pool=${network.addressPool}`,
    `--iptables=${network.iptables ?? false}`,
    // Nor the host's ip_forward sysctl: host <-> container and container <-> container on one bridge need no forwarding.
    `--ip-forward=${network.iptables ?? false}`,
    // Containers still running at shutdown get 2 s, not 10, to stop.
    '--shutdown-timeout=2',
    '--log-level=warn',
  ];
  const startedAt = Date.now();
  const logFd = openSync(paths.logFile, 'w');
  const child = spawn(dockerd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  child.unref(); // it belongs to the whole run, not to this process
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = `exited with ${code ?? signal}`));
  child.once('error', (err) => (exit = `could not be spawned: ${err.message}`));

  while (Date.now() - startedAt < timeoutMs) {
    if (exit) return fail(`dockerd ${exit} during start-up`);
    if (await ping(paths.socket)) {
      log(`dockerd ready on unix://${paths.socket} in ${Date.now() - startedAt} ms (data-root ${paths.dataRoot})`);
      return undefined;
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  return fail(`dockerd did not answer /_ping within ${timeoutMs} ms`);
}

/** Kills what is still running (faster than the daemon's own shutdown), stops dockerd, drops the bridge. */
async function stopDaemon(paths: EnginePaths, network: EngineNetwork, log: (msg: string) => void): Promise<void> {
  const started = Date.now();
  try {
    const docker = new Docker({ socketPath: paths.socket });
    const running = await docker.listContainers({ filters: { status: ['running'] } });
    await Promise.all(
      running.map((c) =>
        docker
          .getContainer(c.Id)
          .kill()
          .catch(() => {}),
      ),
    );
  } catch {
    // The daemon may already be gone; terminate() below copes.
  }
  await terminate(paths.pidFile, 20_000);
  rmSync(paths.socket, { force: true });
  deleteBridge(network.bridge);
  log(`dockerd stopped in ${Date.now() - started} ms`);
}

/** Removes containers, networks and volumes a crashed earlier run left in this private data-root. */
async function removeLeftovers(socketPath: string, log: (msg: string) => void): Promise<void> {
  const docker = new Docker({ socketPath });
  const filters = { label: [LABEL_CELL] };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const networks = await docker.listNetworks({ filters });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove()));
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  await Promise.all(volumes.map((v) => docker.getVolume(v.Name).remove()));
  const n = containers.length + networks.length + volumes.length;
  if (n)
    log(
      `removed ${containers.length} containers, ${networks.length} networks, ${volumes.length} volumes left by an earlier run`,
    );
}

function ensureBridge(network: EngineNetwork): string | undefined {
  try {
    execFileSync('ip', ['link', 'show', network.bridge], { stdio: 'ignore' });
    return undefined;
  } catch {
    // Missing: create it below.
  }
  try {
    execFileSync('ip', ['link', 'add', network.bridge, 'type', 'bridge'], { stdio: 'pipe' });
    execFileSync('ip', ['addr', 'add', network.bridgeAddress, 'dev', network.bridge], { stdio: 'pipe' });
    execFileSync('ip', ['link', 'set', network.bridge, 'up'], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    deleteBridge(network.bridge);
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `could not create the bridge ${network.bridge} for dockerd: ${stderr || (err as Error).message}`;
  }
}

function deleteBridge(bridge: string): void {
  try {
    execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
}

/** GET /_ping on the socket: true only for a 200 "OK". */
export function ping(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'OK'));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The PID in the pid file, if that process is alive and is a dockerd. */
function daemonPid(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
  try {
    // A recycled PID must never be signalled.
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'dockerd') return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

function signalDaemon(pidFile: string, signal: NodeJS.Signals): number | undefined {
  const pid = daemonPid(pidFile);
  if (pid !== undefined) {
    try {
      process.kill(pid, signal);
    } catch {
      // It ended meanwhile.
    }
  }
  return pid;
}

async function terminate(pidFile: string, graceMs: number): Promise<void> {
  const pid = signalDaemon(pidFile, 'SIGTERM');
  if (pid === undefined) return;
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
  }
  rmSync(pidFile, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function liveUsers(usersDir: string): string[] {
  try {
    return readdirSync(usersDir).filter((f) => alive(Number(f.split('-')[0])));
  } catch {
    return [];
  }
}

function pruneDeadUsers(usersDir: string): void {
  for (const f of readdirSync(usersDir)) {
    if (!alive(Number(f.split('-')[0]))) rmSync(join(usersDir, f), { force: true });
  }
}

/** A mkdir lock (atomic on every filesystem) holding the owner's PID; a dead owner's lock is broken. */
async function acquireLock(lockDir: string): Promise<() => void> {
  const owner = join(lockDir, 'owner');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(owner, `${process.pid}\n`);
      return () => {
        rmSync(lockDir, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lockIsStale(lockDir, owner)) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockDir}`);
    await sleep(50);
  }
}

function lockIsStale(lockDir: string, owner: string): boolean {
  try {
    const pid = Number(readFileSync(owner, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && !alive(pid);
  } catch {
    // No owner file yet: only stale if it has stayed that way for a while (the owner died in between).
    try {
      return Date.now() - statSync(lockDir).mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
}

function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
