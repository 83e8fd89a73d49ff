/**
 * A helper process the cell starts DETACHED (its own session, so it outlives the cell: a restart or
 * upgrade of the control plane does not take the data plane down), adopts on the next start, and
 * supervises while the cell runs: when it dies, it is started again within about a second.
 *
 * Ownership is the pid file in the data dir plus the process's own command line: a pid is adopted
 * only when /proc/<pid>/cmdline still names the command and an argument unique to this data dir
 * (its config file), so a recycled pid or another cell's copy is never taken over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Logger } from './logger.js';

export interface DetachedSpec {
  /** For logs and status: "caddy", "dnsmasq". */
  name: string;
  command: string;
  args: string[];
  /** The process writes its output here (appended). */
  logFile: string;
  /** The cell's record of the running process (its pid). */
  pidFile: string;
  /** An argument only this data dir's copy has (e.g. its config file path): adoption checks it. */
  ownerMark: string;
  env?: NodeJS.ProcessEnv;
  /** Resolves once the process serves (e.g. its admin socket answers); rejects after its own time limit. */
  ready: () => Promise<void>;
  /** Runs before each spawn (e.g. remove a stale socket file a dead copy left). */
  beforeSpawn?: () => void;
  /** Runs after every start, adoption or restart: bring its config to what the cell wants. */
  converge: () => Promise<void>;
}

export interface DetachedState {
  running: boolean;
  pid: number | null;
  /** The running copy was found at start (started by an earlier cell process), not started by this one. */
  adopted: boolean;
  restarts: number;
  last_restart: string | null;
  last_error: string | null;
}

/** The command line of a live, non-zombie process, or undefined. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class DetachedProcess {
  private pid: number | null = null;
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private adopted = false;
  private restarts = 0;
  private lastRestart: string | null = null;
  private lastError: string | null = null;
  private restarting: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly spec: DetachedSpec,
    private readonly logger: Logger,
    private readonly checkEveryMs = 1000,
  ) {}

  /** Adopts the running copy this data dir owns, or starts one; then converges and supervises. */
  async start(): Promise<void> {
    this.stopped = false;
    const owned = this.ownedPid();
    if (owned !== undefined) {
      this.pid = owned;
      this.adopted = true;
      this.logger.info(`${this.spec.name}: adopted the running process`, { pid: owned });
      try {
        await this.spec.ready();
      } catch (err) {
        this.lastError = String(err instanceof Error ? err.message : err);
        this.logger.warn(`${this.spec.name}: the adopted process does not answer; starting a new one`, { pid: owned });
        this.kill(owned);
        await this.spawnAndWait();
      }
    } else {
      await this.spawnAndWait();
    }
    await this.spec.converge();
    this.timer = setInterval(() => void this.check(), this.checkEveryMs);
    this.timer.unref();
  }

  /** Stops supervising; the process keeps running (it outlives the cell). `terminate` ends it too. */
  async stop(terminate = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.restarting?.catch(() => undefined);
    if (this.child) this.child.removeAllListeners('exit');
    if (terminate && this.pid !== null) {
      this.kill(this.pid);
      rmSync(this.spec.pidFile, { force: true });
      this.pid = null;
    }
  }

  state(): DetachedState {
    return {
      running: this.pid !== null && processCommandLine(this.pid) !== undefined,
      pid: this.pid,
      adopted: this.adopted,
      restarts: this.restarts,
      last_restart: this.lastRestart,
      last_error: this.lastError,
    };
  }

  /** The pid from the pid file when that process is alive and is this data dir's copy. */
  private ownedPid(): number | undefined {
    if (!existsSync(this.spec.pidFile)) return undefined;
    const pid = Number(readFileSync(this.spec.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const cmdline = processCommandLine(pid);
    if (!cmdline) return undefined;
    const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);
    if (!cmdline.some((a) => base(a) === base(this.spec.command)) || !cmdline.includes(this.spec.ownerMark))
      return undefined;
    return pid;
  }

  private kill(pid: number): void {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }

  private async spawnAndWait(): Promise<void> {
    this.spec.beforeSpawn?.();
    const out = openSync(this.spec.logFile, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(this.spec.command, this.spec.args, {
        detached: true, // its own session: a terminal's Ctrl-C or the cell's exit does not reach it
        stdio: ['ignore', out, out],
        env: this.spec.env ?? process.env,
      });
    } finally {
      closeSync(out);
    }
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    this.child = child;
    this.pid = spawned;
    this.adopted = false;
    writeFileSync(this.spec.pidFile, `${spawned}\n`, { mode: 0o600 });
    child.once('exit', (code, signal) => {
      if (this.pid === spawned) this.lastError = `exited (${signal ?? `code ${code}`})`;
      if (!this.stopped && this.pid === spawned) void this.restart();
    });
    try {
      await this.spec.ready();
    } catch (err) {
      const tail = readFileSync(this.spec.logFile, 'utf8').split('\n').slice(-5).join('\n');
      throw new Error(`${this.spec.name} did not come up: ${(err as Error).message}\n${tail}`);
    }
    this.logger.info(`${this.spec.name}: started`, { pid: spawned });
  }

  /** Ends the running copy and starts a new one now (a config the process only reads at start). */
  replace(): Promise<void> {
    this.restarting ??= (async () => {
      try {
        const old = this.pid;
        this.pid = null; // its exit is expected: not a death to recover from
        if (old !== null) {
          this.kill(old);
          for (let i = 0; i < 40 && processCommandLine(old) !== undefined; i++) await sleep(50);
        }
        await this.spawnAndWait();
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }

  private async check(): Promise<void> {
    if (this.stopped || this.restarting) return;
    if (this.pid === null || processCommandLine(this.pid) === undefined) await this.restart();
  }

  /** Starts it again after it died, and converges. Failures are retried on the next check. */
  private restart(): Promise<void> {
    this.restarting ??= (async () => {
      try {
        this.logger.warn(`${this.spec.name}: the process died; starting it again`, { pid: this.pid });
        this.pid = null;
        await this.spawnAndWait();
        await this.spec.converge();
        this.restarts += 1;
        this.lastRestart = new Date().toISOString();
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        this.logger.error(`${this.spec.name}: restart failed`, { error: this.lastError });
        await sleep(500);
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }
}
