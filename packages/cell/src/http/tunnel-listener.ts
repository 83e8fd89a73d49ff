/**
 * A second HTTP listener on the cell's WireGuard address, so that peers reach the API (and later
 * the portal) through the tunnel while the main listener stays on 127.0.0.1. The address only
 * exists once the interface is up, so this listener follows the interface: bound when it comes up,
 * moved when the subnet changes, closed when it goes. It serves the same app as the main listener.
 * start()/stop(); a bind that fails is reported in /api/status, never fatal.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Logger } from '../lib/logger.js';

export class TunnelListener {
  private server: Server | undefined;
  private bound: string | undefined;
  private problem: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly handler: RequestListener,
    /** The port: the main listener's (its real one when PIC_PORT=0). */
    private readonly port: () => number,
    private readonly logger: Logger,
  ) {}

  /** Where peers reach the API through the tunnel, or why they cannot. */
  status(): { url: string | null; reason: string | null } {
    return { url: this.bound ? `http://${this.bound}:${this.port()}` : null, reason: this.bound ? null : this.problem };
  }

  /** Listen on `address` (the tunnel address, no prefix), or close when it is null. One change at a time. */
  sync(address: string | null): Promise<void> {
    const next = this.queue.then(() => this.apply(address));
    this.queue = next.catch(() => undefined);
    return next;
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.sync(null);
  }

  private async apply(address: string | null): Promise<void> {
    if (this.stopped) address = null;
    if (address === (this.bound ?? null)) return;
    await this.close();
    this.problem = address ? null : 'the WireGuard interface is not up';
    if (!address) return;
    const server = createServer(this.handler);
    server.keepAliveTimeout = 65_000;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port(), address, () => resolve());
      });
      this.server = server;
      this.bound = address;
      this.logger.info('listening on the wireguard address', { url: this.status().url });
    } catch (err) {
      this.problem = `cannot listen on ${address}:${this.port()}: ${(err as Error).message}`;
      this.logger.warn('cannot listen on the wireguard address', { reason: this.problem });
    }
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
