/**
 * Linked cells: invites, accept with a WireGuard-key proof, site-to-site peers, and peer-sync.
 *
 * A link is a WireGuard peer of the other cell whose allowed IPs are that cell's whole subnet.
 * Each cell pushes its own peers to its links through an outbox per link (cell_outbox, with a
 * strictly increasing sequence number per link), sent over the tunnel to the other cell's
 * peer-sync listener and deleted only once acknowledged: a link that was down gets them all, in
 * order, when it comes back, and the receiver applies each sequence number once.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import { errors, HttpError } from '../../http/errors.js';
import type { Logger } from '../../lib/logger.js';
import { endpointProblem, maskOf, networkOf, parseCidr, parseIPv4 } from '../../lib/net.js';
import { nowIso, sha256Hex } from '../../lib/tokens.js';
import { compile } from '../../lib/ajv.js';
import type { AuditLog } from '../audit/service.js';
import { readCellSettings } from '../config/service.js';
import { listInstallations } from '../store/queries.js';
import type { Vault } from '../vault/vault.js';
import { cellAddress } from '../wireguard/addresses.js';
import type { WgPeer } from '../wireguard/config.js';
import type { WireGuardPeerStatus } from '../wireguard/status.js';
import { linkKey, mac, macEqual } from './crypto.js';
import { decodeInvite, decodeResponse, encodeCode } from './codes.js';
import * as q from './queries.js';
import { RefusalAuditLimiter, type RefusalSummary } from './refusals.js';
import {
  SyncMessage,
  type Change,
  type CodeBody,
  type CreateInviteBody,
  type Policy,
  type ResponsePayload,
} from './schema.js';

type Db = Kysely<Database>;
type Trx = Transaction<Database>;

/** The cell's own WireGuard private key, in the vault (features/peers/network.ts keeps it). */
export const CELL_KEY_SECRET = 'wireguard/private_key';
export const SYNC_PATH = '/api/cells/peer-sync/push';
export const MAC_HEADER = 'x-pic-cell-mac';
/** A message sent longer ago (or further ahead) than this is stale. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** Outbox entries per message. */
export const BATCH = 500;

/** What the cells feature needs of the WireGuard side (PeerNetwork; a stand-in in unit tests). */
export interface LinkNetwork {
  cellPublicKey(): Promise<string>;
  liveByKey(): Promise<Map<string, WireGuardPeerStatus>>;
  /** Re-applies every live peer, the links' site-to-site peers included. */
  sync(): Promise<void>;
}

/** How a message reaches the other cell (HTTP over the tunnel; a stand-in in unit tests). */
export type Transport = (
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  localAddress: string | undefined,
) => Promise<{ status: number; body: unknown }>;

/** A host port an installed service publishes (on the tunnel address too): what policy `services` opens. */
export interface ServicePort {
  service: string;
  port: number;
  protocol: 'tcp' | 'udp';
}

/** The one-step link listener (transport.ts): listens while a one-step invite is open. */
export interface OneStepListener {
  /** Listens when `open`, stops listening when not. */
  sync(open: boolean): Promise<void>;
}

export const ONE_STEP_PATH = '/api/cells/link/complete';

/** Where link subnets get routed and policies enforced (the firewall module; a no-op stand-in where none runs). */
export interface LinkEnforcer {
  apply(
    links: Array<{ name: string; subnet: string; policy: Policy; servicePorts: ServicePort[] }>,
    ownSubnet: string,
  ): Promise<void>;
}

export interface CellLinksOptions {
  db: Db;
  vault: Vault;
  audit: AuditLog;
  logger: Logger;
  network: LinkNetwork;
  syncPort: number;
  transport: Transport;
  enforcer?: LinkEnforcer;
  /** Backoff between failed pushes: starts here and doubles up to maxRetryMs. */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Refused peer-sync messages audited one by one per source and window (default 20 a minute). */
  refusalAudit?: { perWindow: number; windowMs: number };
}

export interface ReceiveResult {
  status: number;
  body: Record<string, unknown>;
}

const validMessage = compile(SyncMessage);

export function subnetsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return false;
  const prefix = Math.min(x.prefix, y.prefix);
  return (networkOf(x) & maskOf(prefix)) >>> 0 === (networkOf(y) & maskOf(prefix)) >>> 0;
}

export function inSubnet(ip: string, subnet: string): boolean {
  const addr = parseIPv4(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
  const cidr = parseCidr(subnet);
  if (addr === undefined || !cidr) return false;
  return (addr & maskOf(cidr.prefix)) >>> 0 === networkOf(cidr);
}

/** The response MAC: over the nonce, both public keys, and everything the responder claims. */
function responseMac(key: Buffer, inviterKey: string, r: Omit<ResponsePayload, 'mac' | 'v'>): string {
  return mac(
    key,
    'response',
    r.nonce,
    inviterKey,
    r.public_key,
    r.name,
    r.domain,
    r.endpoint ?? '',
    r.subnet,
    String(r.sync_port),
  );
}

/** The MAC of a sync message: its exact bytes, bound to its direction (the shared key is the same both ways). */
export function messageMac(key: Buffer, from: string, to: string, body: Buffer): string {
  return mac(key, 'sync', from, to, body);
}

export const parsePolicy = (text: string): Policy => JSON.parse(text) as Policy;

export class CellLinks {
  private readonly db: Db;
  private readonly senders = new Map<
    number,
    { running: boolean; again: boolean; retry?: NodeJS.Timeout; backoff: number }
  >();
  private diffing: Promise<void> | undefined;
  private diffQueued: Promise<void> | undefined;
  private stopped = false;
  private converge: NodeJS.Timeout | undefined;
  /** Sync keys derived this run, by the other cell's public key: memory only, never stored. */
  private readonly syncKeys = new Map<string, Buffer>();
  private readonly refusals: RefusalAuditLimiter;
  private oneStep: OneStepListener | undefined;
  /** The last apply of routes and firewall: the next one waits for it. */
  private enforcing: Promise<void> = Promise.resolve();

  constructor(private readonly o: CellLinksOptions) {
    this.db = o.db;
    this.refusals = new RefusalAuditLimiter(
      (summary) => this.auditSummary(summary),
      o.refusalAudit?.perWindow,
      o.refusalAudit?.windowMs,
    );
  }

  /** The one entry for the refusals of a window that were counted, not audited one by one. */
  private async auditSummary(s: RefusalSummary): Promise<void> {
    await this.o.audit.append({
      actor: s.link ? `cell:${s.link}` : 'cell:unknown',
      action: 'cells.peer_sync',
      targetType: 'cell_link',
      targetId: s.link,
      result: 'denied',
      ip: s.source === '*' ? null : s.source,
      details: { error: 'refusals_counted', count: s.count, errors: s.errors, from: s.from, to: s.to },
    });
  }

  /** Timers of work deferred a little (cleared at stop). */
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Work after an answer: not after stop (the database may be closed by then), failures logged. */
  private background(work: () => Promise<void>): void {
    if (this.stopped) return;
    work().catch((err) => {
      if (!this.stopped) this.o.logger.warn('linked cells: background work failed', { error: String(err) });
    });
  }

  /** One-step invites are possible once the link listener is attached (the cell's own namespace). */
  attachOneStep(listener: OneStepListener): void {
    this.oneStep = listener;
  }

  /** The link listener listens while a one-step invite can still be completed, and only then. */
  async oneStepChanged(): Promise<void> {
    if (!this.oneStep) return;
    const open = (await q.openOneStepInvites(this.db)) > 0;
    await this.oneStep
      .sync(open && !this.stopped)
      .catch((err) => this.o.logger.warn('link listener', { error: String(err) }));
  }

  // ---------- keys ----------

  private async keys(executor: Db = this.db): Promise<{ privateKey: string; publicKey: string }> {
    const publicKey = await this.o.network.cellPublicKey();
    const privateKey = await this.o.vault.get(CELL_KEY_SECRET, executor);
    if (!privateKey) throw errors.unavailable('the cell has no WireGuard key yet');
    return { privateKey, publicKey };
  }

  /** The peer-sync MAC key with this cell, derived once per run from the vault-held private key. */
  private async syncKey(theirPublicKey: string): Promise<{ key: Buffer; publicKey: string }> {
    const publicKey = await this.o.network.cellPublicKey();
    let key = this.syncKeys.get(theirPublicKey);
    if (!key) {
      const keys = await this.keys();
      key = linkKey(keys.privateKey, keys.publicKey, theirPublicKey, 'sync');
      this.syncKeys.set(theirPublicKey, key);
    }
    return { key, publicKey };
  }

  /** Makes sure the cell's key pair exists (call before opening a transaction). */
  async ensureKey(): Promise<string> {
    return this.o.network.cellPublicKey();
  }

  // ---------- invite / accept / complete ----------

  async createInvite(
    trx: Trx,
    input: CreateInviteBody,
  ): Promise<{ code: string; expires_at: string; nonce_hash: string }> {
    const { identity, network } = await readCellSettings(trx);
    const endpoint = input.endpoint ?? network.endpoint;
    if (!endpoint) {
      throw errors.conflict('the cell has no public endpoint: set network.endpoint or pass endpoint', {
        endpoint: 'is not set',
      });
    }
    const problem = endpointProblem(endpoint);
    if (problem) throw errors.validation({ endpoint: problem });
    const oneStep = input.one_step === true;
    if (oneStep && !this.oneStep) {
      throw errors.conflict(
        "one-step invites need the WireGuard interface in the cell's own network namespace: use a two-step invite",
        { one_step: 'is not available on this cell' },
      );
    }
    const nonce = randomBytes(32).toString('base64url');
    // a one-step invite links whoever holds it first, without this admin: short-lived by default
    const ttl = input.ttl_minutes ?? (oneStep ? 15 : 60);
    const expiresAt = new Date(Date.now() + ttl * 60_000).toISOString();
    const nonceHash = sha256Hex(nonce);
    await q.insertInvite(trx, nonceHash, expiresAt, oneStep);
    const code = encodeCode({
      v: 1,
      name: identity.cell_name,
      domain: identity.domain,
      public_key: await this.o.network.cellPublicKey(),
      endpoint,
      subnet: network.subnet,
      sync_port: this.o.syncPort,
      nonce,
      expires_at: expiresAt,
      // TCP on the WireGuard port's number, on the endpoint's host: where the response is delivered
      ...(oneStep ? { link_port: network.wireguard_port } : {}),
    });
    return { code, expires_at: expiresAt, nonce_hash: nonceHash };
  }

  /** Refuses a cell whose name, domain, key or subnet collides with this cell or one of its links. */
  private async checkNewLink(
    trx: Trx,
    other: { name: string; domain: string; public_key: string; subnet: string },
  ): Promise<void> {
    const { identity, network } = await readCellSettings(trx);
    const me = await this.o.network.cellPublicKey();
    if (other.public_key === me) throw errors.conflict("that is this cell's own code", { code: "is this cell's own" });
    const sub = parseCidr(other.subnet);
    if (!sub || networkOf(sub) !== sub.network || sub.prefix < 8 || sub.prefix > 30) {
      throw errors.validation({ subnet: "the other cell's subnet is not a valid IPv4 network" });
    }
    if (subnetsOverlap(other.subnet, network.subnet)) {
      throw errors.conflict(
        `subnet overlap: the other cell's subnet ${other.subnet} overlaps this cell's ${network.subnet}; ` +
          'one of the cells must change its subnet before they can be linked',
        { subnet: "overlaps this cell's subnet" },
      );
    }
    if (other.name === identity.cell_name)
      throw errors.conflict(`the other cell has this cell's name "${other.name}"`, { name: "is this cell's" });
    if (other.domain === identity.domain)
      throw errors.conflict(`the other cell has this cell's domain "${other.domain}"`, { domain: "is this cell's" });
    for (const link of await q.listLinks(trx)) {
      if (link.public_key === other.public_key)
        throw errors.conflict(`already linked to this cell (as "${link.name}")`, { public_key: 'already linked' });
      if (link.name === other.name)
        throw errors.conflict(`a linked cell is already named "${other.name}"`, { name: 'is taken' });
      if (link.domain === other.domain)
        throw errors.conflict(`a linked cell already has the domain "${other.domain}"`, { domain: 'is taken' });
      if (subnetsOverlap(link.subnet, other.subnet)) {
        throw errors.conflict(`subnet overlap: ${other.subnet} overlaps ${link.subnet} of linked cell "${link.name}"`, {
          subnet: 'overlaps a link',
        });
      }
    }
  }

  /** On B: checks the invite, links A, and makes the response code that proves B holds its key. */
  async accept(
    trx: Trx,
    input: CodeBody,
  ): Promise<{ link: q.LinkRow; response: string; deliverTo?: { url: string; until: string } }> {
    const invite = decodeInvite(input.code);
    if (!(Date.parse(invite.expires_at) > Date.now()))
      throw new HttpError(410, 'invite_expired', 'this invite has expired');
    if (input.endpoint) {
      const problem = endpointProblem(input.endpoint);
      if (problem) throw errors.validation({ endpoint: problem });
    }
    await this.checkNewLink(trx, invite);
    const endpointIssue = endpointProblem(invite.endpoint);
    if (endpointIssue)
      throw errors.badRequest(`the invite's endpoint is not usable: ${endpointIssue}`, { code: 'has a bad endpoint' });
    const { identity, network } = await readCellSettings(trx);
    const keys = await this.keys(trx);
    const link = await q.insertLink(trx, {
      name: invite.name,
      domain: invite.domain,
      public_key: invite.public_key,
      endpoint: invite.endpoint,
      subnet: invite.subnet,
      sync_port: invite.sync_port,
      policy: JSON.stringify(input.policy ?? { mode: 'cell_only' }),
      role: 'invitee',
    });
    await this.enqueueSnapshot(trx, link.id);
    const claims = {
      nonce: invite.nonce,
      name: identity.cell_name,
      domain: identity.domain,
      public_key: keys.publicKey,
      endpoint: input.endpoint ?? network.endpoint ?? null,
      subnet: network.subnet,
      sync_port: this.o.syncPort,
    };
    const key = linkKey(keys.privateKey, keys.publicKey, invite.public_key, 'accept');
    const response = encodeCode({ v: 1, ...claims, mac: responseMac(key, invite.public_key, claims) });
    if (invite.link_port === undefined) return { link, response };
    const host = invite.endpoint.slice(0, invite.endpoint.lastIndexOf(':'));
    const url = `http://${host}:${invite.link_port}${ONE_STEP_PATH}`;
    return { link, response, deliverTo: { url, until: invite.expires_at } };
  }

  /**
   * On A: checks the response's proof with A's own key and B's claimed one, uses the invite up, links B.
   * `oneStep`: delivered by B to the link listener, which may complete one-step invites only.
   */
  async complete(trx: Trx, input: CodeBody, oneStep = false): Promise<q.LinkRow> {
    const r = decodeResponse(input.code);
    const invite = await q.findInvite(trx, sha256Hex(r.nonce));
    if (!invite) throw errors.notFound('no invite of this cell matches this response');
    if (oneStep && invite.one_step !== 1)
      throw errors.forbidden("a two-step invite is completed by its cell's admin only", 'not_one_step');
    if (invite.used_at)
      throw new HttpError(409, 'invite_used', `this invite was already used (by "${invite.used_by}")`);
    if (!(Date.parse(invite.expires_at) > Date.now()))
      throw new HttpError(410, 'invite_expired', 'this invite has expired');
    const keys = await this.keys(trx);
    let expected: string;
    try {
      expected = responseMac(linkKey(keys.privateKey, keys.publicKey, r.public_key, 'accept'), keys.publicKey, r);
    } catch {
      throw errors.forbidden("the response's public key is not usable", 'key_proof_failed');
    }
    if (!macEqual(expected, r.mac)) {
      throw errors.forbidden(
        'the response was not made with the private key of the public key it claims',
        'key_proof_failed',
      );
    }
    await this.checkNewLink(trx, r);
    if (r.endpoint) {
      const problem = endpointProblem(r.endpoint);
      if (problem) throw errors.validation({ endpoint: problem });
    }
    await q.markInviteUsed(trx, invite.id, r.name);
    const link = await q.insertLink(trx, {
      name: r.name,
      domain: r.domain,
      public_key: r.public_key,
      endpoint: r.endpoint,
      subnet: r.subnet,
      sync_port: r.sync_port,
      policy: JSON.stringify(input.policy ?? { mode: 'cell_only' }),
      role: 'inviter',
    });
    // the first message tells the invited cell that this side is linked too: it pushes only after it
    await q.enqueue(trx, link.id, [JSON.stringify({ op: 'hello' })]);
    await this.enqueueSnapshot(trx, link.id);
    return link;
  }

  /**
   * On A's link listener: a response B delivered itself. The same checks as `complete` (and the
   * invite must be a one-step one), in one transaction with its audit entry; refusals are audited
   * (rationed per source like peer-sync's).
   */
  async completeOneStep(code: unknown, source: string | undefined): Promise<ReceiveResult> {
    try {
      if (typeof code !== 'string' || code.length < 10 || code.length > 4096)
        throw errors.badRequest('the body must be {"code": "<response code>"}', { code: 'is required' });
      const link = await this.db.transaction().execute(async (trx) => {
        const made = await this.complete(trx, { code }, true);
        this.o.audit.appendIn(trx, {
          actor: `cell:${made.name}`,
          action: 'cells.complete',
          targetType: 'cell_link',
          targetId: made.name,
          result: 'ok',
          ip: source ?? null,
          details: { via: 'one_step', subnet: made.subnet, public_key: made.public_key },
        });
        return made;
      });
      this.background(() => this.linksChanged());
      this.background(() => this.oneStepChanged());
      return { status: 201, body: { ok: true, cell: link.name } };
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      if (this.refusals.admit(source ?? 'unknown', err.id, null)) {
        await this.o.audit.append({
          actor: 'cell:unknown',
          action: 'cells.complete',
          targetType: 'cell_link',
          targetId: null,
          result: 'denied',
          ip: source ?? null,
          details: { error: err.id, via: 'one_step' },
        });
      }
      return { status: err.status, body: { ok: false, error: err.message, code: err.id, fields: {} } };
    }
  }

  /**
   * On B after a one-step accept committed: delivers the response to A's link listener, again
   * with a growing pause until A takes it, refuses it, or the invite expires. The answer to
   * accept shows the response too, so A's admin can still paste it.
   */
  deliverResponse(linkId: number, deliverTo: { url: string; until: string }, response: string): void {
    this.background(() => this.deliver(linkId, deliverTo, response));
  }

  private async deliver(linkId: number, deliverTo: { url: string; until: string }, response: string): Promise<void> {
    const body = Buffer.from(JSON.stringify({ code: response }), 'utf8');
    let pause = this.o.minRetryMs ?? 1_000;
    while (!this.stopped && Date.now() < Date.parse(deliverTo.until)) {
      let answer: { status: number; body: unknown } | undefined;
      try {
        answer = await withTimeout(this.o.transport(deliverTo.url, body, {}, undefined), 10_000);
      } catch (err) {
        const why = String((err as Error).message ?? err).slice(0, 200);
        await q.setLinkError(this.db, linkId, `one-step: not delivered yet: ${why}`);
      }
      if (answer && answer.status !== 429 && answer.status < 500) {
        const code = (answer.body as { code?: unknown } | null)?.code;
        const refused = `one-step: refused: ${answer.status} ${typeof code === 'string' ? code : ''}`.trim();
        await q.setLinkError(this.db, linkId, answer.status === 201 ? null : refused);
        return;
      }
      await new Promise((r) => setTimeout(r, pause).unref());
      pause = Math.min(pause * 2, 30_000);
    }
  }

  /** After a link was added, removed or changed: the interface, routes and firewall follow, pushes start. */
  async linksChanged(): Promise<void> {
    await this.o.network
      .sync()
      .catch((err) => this.o.logger.warn('wireguard apply after link change failed', { error: String(err) }));
    await this.enforce();
    for (const link of await q.listLinks(this.db)) this.kick(link.id);
  }

  /**
   * Routes, forwarding and firewall follow the links, their policies and the installed services
   * (called after a link or policy change, after a service is installed or removed, and every 30 s).
   */
  async enforce(): Promise<void> {
    if (!this.o.enforcer) return;
    const enforcer = this.o.enforcer;
    const run = async () => {
      const links = await q.listLinks(this.db);
      const { network } = await readCellSettings(this.db);
      const ports = links.length > 0 ? await this.servicePorts() : new Map<string, ServicePort[]>();
      await enforcer.apply(
        links.map((l) => {
          const policy = parsePolicy(l.policy);
          const servicePorts = policy.mode === 'services' ? policy.services.flatMap((id) => ports.get(id) ?? []) : [];
          return { name: l.name, subnet: l.subnet, policy, servicePorts };
        }),
        network.subnet,
      );
    };
    // one apply at a time: two interleaved rebuilds of the chain could leave it half-written
    const next = this.enforcing.then(run, run);
    this.enforcing = next.catch((err) =>
      this.o.logger.warn('link routes/firewall not applied', { error: String(err) }),
    );
    return this.enforcing;
  }

  /** The host ports of each installed service (a service not installed, or half-installed, opens nothing). */
  private async servicePorts(): Promise<Map<string, ServicePort[]>> {
    const out = new Map<string, ServicePort[]>();
    for (const inst of await listInstallations(this.db)) {
      if (inst.state !== 'installed') continue;
      const ports: ServicePort[] = [];
      for (const c of inst.manifest.containers) {
        for (const p of c.ports ?? []) {
          if (p.host !== undefined) ports.push({ service: inst.id, port: p.host, protocol: p.protocol });
        }
      }
      out.set(inst.id, ports);
    }
    return out;
  }

  // ---------- links ----------

  /** The site-to-site WireGuard peers: each linked cell, routed its whole subnet. */
  async linkPeers(): Promise<WgPeer[]> {
    const links = await q.listLinks(this.db);
    return links.map((l) => ({
      publicKey: l.public_key,
      allowedIps: [l.subnet],
      ...(l.endpoint ? { endpoint: l.endpoint } : {}),
      persistentKeepalive: 25,
    }));
  }

  async list() {
    const [links, pending, live] = await Promise.all([
      q.listLinks(this.db),
      q.pendingCounts(this.db),
      this.o.network.liveByKey(),
    ]);
    return links.map((l) => ({ link: l, pending: pending.get(l.id) ?? 0, live: live.get(l.public_key) }));
  }

  async requireLink(db: Db, name: string): Promise<q.LinkRow> {
    const link = await q.findLinkByName(db, name);
    if (!link) throw errors.notFound(`no linked cell "${name}"`);
    return link;
  }

  async remotePeers(name: string) {
    const link = await this.requireLink(this.db, name);
    return { link, peers: await q.remotePeers(this.db, link.id) };
  }

  async setPolicy(trx: Trx, name: string, policy: Policy): Promise<q.LinkRow> {
    const link = await this.requireLink(trx, name);
    await q.updateLinkPolicy(trx, link.id, JSON.stringify(policy));
    return (await q.findLinkById(trx, link.id))!;
  }

  /**
   * Unlinks: tells the other cell (an `unlink` entry, sent at once with a short time limit, when it
   * is reachable), then removes the link, its pending pushes and the other cell's synced peers here.
   */
  async unlink(name: string, inTrx: (trx: Trx, notified: boolean) => void): Promise<{ notified: boolean }> {
    const link = await this.requireLink(this.db, name);
    await this.db
      .transaction()
      .execute((trx) => q.enqueue(trx, link.id, [JSON.stringify({ op: 'unlink' })]).then(() => undefined));
    let notified = false;
    // an invited cell that never heard from the inviter has nobody to tell
    if (!(link.role === 'invitee' && link.recv_seq === 0)) {
      try {
        notified = await this.flush(link.id, 3_000);
      } catch {
        notified = false;
      }
    }
    await this.db.transaction().execute(async (trx) => {
      await q.deleteLink(trx, link.id);
      inTrx(trx, notified);
    });
    return { notified };
  }

  // ---------- outbox ----------

  /** Queues the full current state of this cell's peers for a new link (same transaction as the link). */
  private async enqueueSnapshot(trx: Trx, linkId: number): Promise<void> {
    await this.diffIn(trx);
    const pushed = await q.pushedPeers(trx);
    await q.enqueue(
      trx,
      linkId,
      pushed.map((p) => JSON.stringify({ op: 'upsert', peer: JSON.parse(p.state) as object })),
    );
  }

  /** The difference between this cell's peers and what its links were last sent, queued for every link. */
  private async diffIn(trx: Trx): Promise<number> {
    const [changed, removed, links] = await Promise.all([
      q.changedOwnPeers(trx),
      q.removedOwnPeers(trx),
      q.listLinks(trx),
    ]);
    const changes: string[] = [];
    for (const peer of changed) {
      changes.push(`{"op":"upsert","peer":${peer.state}}`);
      await q.setPushed(trx, peer.name, peer.state);
    }
    for (const { name } of removed) {
      changes.push(JSON.stringify({ op: 'delete', name }));
      await q.unsetPushed(trx, name);
    }
    for (const link of links) await q.enqueue(trx, link.id, changes);
    return changes.length;
  }

  /**
   * This cell's peers changed (the hook features/peers calls after a commit): queue the difference
   * for every link and push. Calls during a run share one more run behind it.
   */
  peersChanged(): Promise<void> {
    if (this.diffQueued) return this.diffQueued;
    const run = async () => {
      const n = await this.db.transaction().execute((trx) => this.diffIn(trx));
      if (n > 0) for (const link of await q.listLinks(this.db)) this.kick(link.id);
    };
    if (!this.diffing) {
      this.diffing = run().finally(() => (this.diffing = undefined));
      return this.diffing;
    }
    const next = () => {
      this.diffQueued = undefined;
      this.diffing = run().finally(() => (this.diffing = undefined));
      return this.diffing;
    };
    this.diffQueued = this.diffing.then(next, next);
    return this.diffQueued;
  }

  /** Starts (or re-runs) sending a link's outbox. */
  kick(linkId: number): void {
    if (this.stopped) return;
    let s = this.senders.get(linkId);
    if (!s) {
      s = { running: false, again: false, backoff: this.o.minRetryMs ?? 1_000 };
      this.senders.set(linkId, s);
    }
    if (s.retry) {
      clearTimeout(s.retry);
      s.retry = undefined;
    }
    if (s.running) {
      s.again = true;
      return;
    }
    const state = s;
    state.running = true;
    void (async () => {
      let ok = true;
      do {
        state.again = false;
        ok = await this.flush(linkId).catch((err) => {
          this.o.logger.warn('peer-sync push failed', { link_id: linkId, error: String(err) });
          return false;
        });
      } while (ok && state.again && !this.stopped);
      state.running = false;
      if (ok) {
        state.backoff = this.o.minRetryMs ?? 1_000;
      } else if (!this.stopped && (await q.findLinkById(this.db, linkId).catch(() => undefined))) {
        state.retry = setTimeout(() => this.kick(linkId), state.backoff);
        state.retry.unref();
        state.backoff = Math.min(state.backoff * 2, this.o.maxRetryMs ?? 60_000);
      } else {
        this.senders.delete(linkId);
      }
    })();
  }

  /** Sends the link's outbox in order until it is empty; true when it is (or the link is gone). */
  async flush(linkId: number, timeoutMs = 10_000): Promise<boolean> {
    const { network } = await readCellSettings(this.db);
    for (;;) {
      const link = await q.findLinkById(this.db, linkId);
      if (!link) return true;
      // an invited cell waits for the inviter's first message: until the inviter's admin completes
      // the link, a push would only be refused (and fill the inviter's audit log with refusals)
      if (link.role === 'invitee' && link.recv_seq === 0) return true;
      const rows = await q.pendingFor(this.db, linkId, BATCH);
      if (rows.length === 0) return true;
      const keys = await this.syncKey(link.public_key);
      const message = {
        v: 1,
        from: keys.publicKey,
        to: link.public_key,
        sent_at: nowIso(),
        entries: rows.map((r) => ({ seq: r.seq, change: JSON.parse(r.change) as Change })),
      };
      const body = Buffer.from(JSON.stringify(message), 'utf8');
      const key = keys.key;
      const url = `http://${cellAddress(link.subnet)}:${link.sync_port}${SYNC_PATH}`;
      let answer: { status: number; body: unknown };
      try {
        answer = await withTimeout(
          this.o.transport(
            url,
            body,
            { [MAC_HEADER]: messageMac(key, keys.publicKey, link.public_key, body) },
            cellAddress(network.subnet),
          ),
          timeoutMs,
        );
      } catch (err) {
        await q.markSynced(this.db, linkId, `unreachable: ${String((err as Error).message ?? err).slice(0, 200)}`);
        return false;
      }
      const lastSeq = (answer.body as { last_seq?: unknown } | null)?.last_seq;
      const last = rows[rows.length - 1]!.seq;
      if (
        answer.status === 200 ||
        (answer.status === 409 && typeof lastSeq === 'number' && lastSeq >= rows[0]!.seq - 1)
      ) {
        const through = answer.status === 200 ? last : Math.min(lastSeq as number, last);
        await q.dropAcknowledged(this.db, linkId, through);
        await q.markSynced(this.db, linkId, null);
        continue;
      }
      const error = (answer.body as { code?: unknown } | null)?.code;
      await q.markSynced(this.db, linkId, `refused: ${answer.status} ${typeof error === 'string' ? error : ''}`.trim());
      return false;
    }
  }

  // ---------- receiving ----------

  /**
   * A peer-sync message as it arrived: its exact bytes, the source address, the MAC header. Refusals
   * (forged, replayed, reordered, stale, from the wrong address) are audited and change nothing.
   */
  async receive(raw: Buffer, source: string | undefined, macHeader: string | undefined): Promise<ReceiveResult> {
    let linkName: string | undefined;
    const refuse = async (status: number, error: string, message: string, extra: Record<string, unknown> = {}) => {
      const answer = { status, body: { ok: false, error: message, code: error, fields: {}, ...extra } };
      // refused all the same; beyond the first few a minute from one source, only counted
      if (!this.refusals.admit(source ?? 'unknown', error, linkName ?? null)) return answer;
      await this.o.audit.append({
        actor: linkName ? `cell:${linkName}` : 'cell:unknown',
        action: 'cells.peer_sync',
        targetType: 'cell_link',
        targetId: linkName ?? null,
        result: 'denied',
        ip: source ?? null,
        details: { error, ...extra },
      });
      return answer;
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return refuse(400, 'malformed_message', 'the message is not JSON');
    }
    if (!validMessage(parsed)) return refuse(400, 'malformed_message', 'the message is not a peer-sync message');
    const msg = parsed;
    const link = await q.findLinkByKey(this.db, msg.from);
    if (!link) return refuse(403, 'unknown_cell', 'no link with a cell of this key');
    linkName = link.name;
    if (!source || !inSubnet(source, link.subnet)) {
      return refuse(
        403,
        'wrong_source',
        "peer-sync is accepted only over the link's tunnel, from the linked cell's subnet",
      );
    }
    const keys = await this.syncKey(link.public_key);
    if (msg.to !== keys.publicKey) return refuse(403, 'wrong_recipient', 'the message is for another cell');
    const expected = messageMac(keys.key, msg.from, msg.to, raw);
    if (!macHeader || !macEqual(expected, macHeader))
      return refuse(403, 'bad_mac', "the message's MAC does not verify");
    const sentAt = Date.parse(msg.sent_at);
    if (!(Math.abs(Date.now() - sentAt) <= MAX_CLOCK_SKEW_MS))
      return refuse(403, 'stale_message', 'the message is too old (or from the future)');
    const first = msg.entries[0]!.seq;
    const last = msg.entries[msg.entries.length - 1]!.seq;
    if (msg.entries.some((e, i) => e.seq !== first + i))
      return refuse(400, 'malformed_message', 'sequence numbers are not consecutive');
    // a linked cell speaks for its own subnet only
    const outside = msg.entries.find((e) => e.change.op === 'upsert' && !inSubnet(e.change.peer.address, link.subnet));
    if (outside)
      return refuse(400, 'malformed_message', "a peer address is outside the linked cell's subnet", {
        seq: outside.seq,
      });
    if (last <= link.recv_seq)
      return refuse(409, 'replayed', 'already applied', { last_seq: link.recv_seq, seq: first });
    if (first !== link.recv_seq + 1)
      return refuse(409, 'out_of_order', 'a message is missing before this one', {
        last_seq: link.recv_seq,
        seq: first,
      });

    let unlinked = false;
    try {
      await this.db.transaction().execute(async (trx) => {
        // re-read under the write lock: a concurrent delivery of the same message applies once
        const now = await q.findLinkById(trx, link.id);
        if (!now || now.recv_seq !== link.recv_seq) throw new HttpError(409, 'replayed', 'already applied');
        for (const { change } of msg.entries) {
          if (change.op === 'upsert') await q.upsertRemotePeer(trx, link.id, change.peer);
          else if (change.op === 'delete') await q.deleteRemotePeer(trx, link.id, change.name);
          else if (change.op === 'unlink') unlinked = true;
        }
        if (unlinked) await q.deleteLink(trx, link.id);
        else await q.setRecvSeq(trx, link.id, last);
        this.o.audit.appendIn(trx, {
          actor: `cell:${link.name}`,
          action: unlinked ? 'cells.unlinked_by_peer' : 'cells.peer_sync',
          targetType: 'cell_link',
          targetId: link.name,
          result: 'ok',
          ip: source,
          details: { first_seq: first, last_seq: last, entries: msg.entries.length },
        });
      });
    } catch (err) {
      if (err instanceof HttpError && err.id === 'replayed')
        return refuse(409, 'replayed', 'already applied', { seq: first });
      throw err;
    }
    if (unlinked) {
      // after the answer has gone back through the tunnel that this takes down
      const later = setTimeout(() => {
        this.timers.delete(later);
        this.background(() => this.linksChanged());
      }, 500);
      later.unref();
      this.timers.add(later);
    } else {
      this.kick(link.id);
    } // it is up: anything this cell has pending for it can go now
    return { status: 200, body: { ok: true, last_seq: last } };
  }

  start(): void {
    this.stopped = false;
    // routes and firewall rules are re-asserted now and then (the interface may have been re-created)
    this.converge = setInterval(() => {
      void this.enforce();
      this.background(() => this.oneStepChanged()); // an invite expired: the link listener closes
    }, 30_000);
    this.converge.unref();
    void this.peersChanged().catch((err) => this.o.logger.warn('peer-sync diff failed', { error: String(err) }));
    this.background(() => this.oneStepChanged());
    void q
      .listLinks(this.db)
      .then((links) => {
        for (const l of links) this.kick(l.id);
      })
      .catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.syncKeys.clear();
    await this.refusals.flush();
    await this.oneStep?.sync(false).catch(() => undefined);
    if (this.converge) clearInterval(this.converge);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.senders.values()) if (s.retry) clearTimeout(s.retry);
    this.senders.clear();
    await this.diffing?.catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
