import type { DetachedProcess } from './detached-process.js';
import type { Logger } from './logger.js';

/** The cell's WireGuard address (no prefix) once the interface is up in this namespace, else why not. */
export type TunnelAddress = () => Promise<{ address: string } | { reason: string }>;

export interface TunnelSupervisorSpec {
  /** The prefix of its log lines: "caddy", "dns". */
  logName: string;
  /** What did not start, in the status: "caddy", "the resolver". */
  what: string;
  tunnel: TunnelAddress;
  logger: Logger;
  /** Makes the helper's process for the tunnel's address (not started yet: the supervisor starts it). */
  prepare(address: string): Promise<DetachedProcess>;
  /** After the process was started or adopted (e.g. Caddy's renewal timer). */
  started?(): void;
}

/**
 * The part Caddy and the resolver share: both run as detached helpers (lib/detached-process.ts) on
 * the cell's WireGuard address. The supervisor polls every second until the tunnel has that
 * address, then starts (or adopts) the helper once; a failed start is logged and shown as the
 * status's reason. It also serializes the helper's config work on one queue, so a converge never
 * overlaps another or the stop.
 */
export class TunnelSupervisor {
  /** Why the helper is not running yet (the status's reason while `process` is unset). */
  waiting = 'not started';
  /** The helper, once the tunnel had its address; it is set before it starts (its converge reads it). */
  process: DetachedProcess | undefined;
  private poll: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly spec: TunnelSupervisorSpec) {}

  /** Begins waiting for the tunnel's address (checked every second); the helper comes up once it is there. */
  start(): void {
    this.stopped = false;
    const tick = async () => {
      if (this.stopped || this.process) return;
      const t = await this.spec.tunnel().catch((err: unknown) => ({ reason: String(err) }));
      if ('reason' in t) {
        this.waiting = t.reason;
        return;
      }
      clearInterval(this.poll);
      this.poll = undefined;
      await this.bringUp(t.address).catch((err: unknown) => {
        this.waiting = `${this.spec.what} did not start: ${err instanceof Error ? err.message : String(err)}`;
        this.spec.logger.error(`${this.spec.logName}: start failed`, { error: this.waiting });
      });
    };
    this.poll = setInterval(() => void tick(), 1000);
    this.poll.unref();
    void tick();
  }

  private async bringUp(address: string): Promise<void> {
    const proc = await this.spec.prepare(address);
    this.process = proc;
    await proc.start();
    this.spec.started?.();
  }

  /** Runs `fn` after every earlier one on the helper's queue has settled. */
  serialize(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops supervising; the helper keeps running (it outlives the cell) and the next cell adopts it. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    await this.queue.catch(() => undefined);
    await this.process?.stop();
  }
}
