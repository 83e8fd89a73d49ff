/** Peer-sync over HTTP: the client that sends a link's outbox, and the listener that receives. */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import getRawBody from 'raw-body';
import type { Logger } from '../../lib/logger.js';
import {
  MAC_HEADER,
  ONE_STEP_PATH,
  SYNC_PATH,
  type CellLinks,
  type OneStepListener,
  type Transport,
} from './service.js';

/** Largest peer-sync message accepted (BATCH entries fit well within it). */
export const SYNC_BODY_LIMIT = 2 * 1024 * 1024;

/** POSTs the message from `localAddress` (the cell's tunnel address), so it leaves through the tunnel. */
export const httpTransport: Transport = (url, body, headers, localAddress) =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
        ...(localAddress ? { localAddress } : {}),
        agent: false,
      },
      (res) => {
        getRawBody(res, { limit: 64 * 1024, encoding: 'utf8' }).then(
          (text) => {
            let parsed: unknown = null;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = null;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          },
          (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
        );
      },
    );
    // a cell that is down must not hold a socket open for the kernel's TCP timeout
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });

/**
 * The peer-sync listener: one route, POST /api/cells/peer-sync/push, on the cell's tunnel address
 * and its own port (cells.sync_port): no sessions, no CSRF, no admin role; the message's source
 * address and MAC are its authentication (CellLinks.receive).
 */
export class PeerSyncListener {
  private server: Server | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  lastError: string | null = null;

  constructor(
    private readonly links: CellLinks,
    private readonly host: () => Promise<string>,
    private readonly port: number,
    private readonly logger: Logger,
  ) {}

  get listening(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  /** Listens on the tunnel address; while it is not there yet (interface coming up), tries again every 2 s. */
  start(): void {
    this.stopped = false;
    void this.tryListen();
  }

  private async tryListen(): Promise<void> {
    if (this.stopped || this.server) return;
    const server = createServer((req, res) => void this.handle(req, res));
    server.requestTimeout = 15_000;
    try {
      const host = await this.host();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, host, () => resolve());
      });
      if (this.stopped) {
        server.close();
        return;
      }
      this.server = server;
      this.lastError = null;
      this.logger.info('peer-sync listening', { host, port: this.port });
    } catch (err) {
      this.lastError = String((err as Error).message ?? err);
      this.retry = setTimeout(() => void this.tryListen(), 2_000);
      this.retry.unref();
    }
  }

  private async handle(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const send = (status: number, body: unknown) => sendJson(res, status, body);
    try {
      if (!isPostTo(req, res, SYNC_PATH)) return;
      let raw: Buffer;
      try {
        raw = await getRawBody(req, { limit: SYNC_BODY_LIMIT });
      } catch {
        return send(413, { ok: false, error: 'message too large', code: 'payload_too_large', fields: {} });
      }
      const mac = req.headers[MAC_HEADER];
      const result = await this.links.receive(raw, req.socket.remoteAddress, typeof mac === 'string' ? mac : undefined);
      send(result.status, result.body);
    } catch (err) {
      this.logger.error('peer-sync request failed', { error: String(err) });
      if (!res.headersSent) send(500, { ok: false, error: 'internal error', code: 'internal', fields: {} });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }
}

/** Requests a minute one address may make to the link listener. */
const LINK_REQUESTS_PER_MINUTE = 10;

/**
 * The one-step link listener: POST /api/cells/link/complete on every address of the cell, TCP on
 * the WireGuard port's number (the port the invite names), and only while a one-step invite is
 * open. No sessions: the response code's MAC is the proof (CellLinks.completeOneStep). Each
 * address may try a few times a minute.
 */
export class LinkListener implements OneStepListener {
  private server: Server | undefined;
  private readonly hits = new Map<string, { start: number; n: number }>();
  lastError: string | null = null;

  constructor(
    private readonly links: CellLinks,
    private readonly port: () => Promise<number>,
    private readonly logger: Logger,
  ) {}

  get listening(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  private syncing: Promise<void> = Promise.resolve();

  /** One change at a time: an open still binding must not miss a close that follows it. */
  sync(open: boolean): Promise<void> {
    const next = this.syncing.then(() => this.apply(open));
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async apply(open: boolean): Promise<void> {
    if (open && !this.server) {
      const server = createServer((req, res) => void this.handle(req, res));
      server.requestTimeout = 15_000;
      const port = await this.port();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '0.0.0.0', () => resolve());
        });
        this.server = server;
        this.lastError = null;
        this.logger.info('link listener open for one-step invites', { port });
      } catch (err) {
        this.lastError = String((err as Error).message ?? err);
        this.logger.warn('link listener could not listen', { port, error: this.lastError });
      }
    } else if (!open && this.server) {
      const server = this.server;
      this.server = undefined;
      this.hits.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      this.logger.info('link listener closed: no open one-step invite');
    }
  }

  private tooMany(ip: string): boolean {
    const now = Date.now();
    if (this.hits.size > 4096) this.hits.clear(); // bounded: a flood of addresses starts over
    const h = this.hits.get(ip);
    if (!h || now - h.start >= 60_000) {
      this.hits.set(ip, { start: now, n: 1 });
      return false;
    }
    return ++h.n > LINK_REQUESTS_PER_MINUTE;
  }

  private async handle(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const send = (status: number, body: unknown) => sendJson(res, status, body);
    try {
      if (!isPostTo(req, res, ONE_STEP_PATH)) return;
      const ip = req.socket.remoteAddress ?? 'unknown';
      if (this.tooMany(ip))
        return send(429, { ok: false, error: 'too many attempts: wait a minute', code: 'rate_limited', fields: {} });
      let body: unknown;
      try {
        body = JSON.parse((await getRawBody(req, { limit: 8 * 1024 })).toString('utf8'));
      } catch {
        return send(400, { ok: false, error: 'the body must be JSON, at most 8 KiB', code: 'bad_request', fields: {} });
      }
      const code = (body as { code?: unknown } | null)?.code;
      const result = await this.links.completeOneStep(code, ip);
      send(result.status, result.body);
    } catch (err) {
      this.logger.error('link listener request failed', { error: String(err) });
      if (!res.headersSent) send(500, { ok: false, error: 'internal error', code: 'internal', fields: {} });
    }
  }
}

/** An answer of these listeners (they run outside Koa): JSON, never cached. */
function sendJson(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Answers 404 or 405 in the one error shape unless the request is a POST to `path`. */
function isPostTo(
  req: import('node:http').IncomingMessage,
  res: import('node:http').ServerResponse,
  path: string,
): boolean {
  const asked = (req.url ?? '').split('?')[0]!.toLowerCase();
  if (asked !== path) sendJson(res, 404, { ok: false, error: 'not found', code: 'not_found', fields: {} });
  else if (req.method !== 'POST')
    sendJson(res, 405, { ok: false, error: 'POST only', code: 'method_not_allowed', fields: {} });
  else return true;
  return false;
}
