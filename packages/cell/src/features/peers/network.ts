import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { CellConfig } from '../../config.js';
import type { Database } from '../../db/schema.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import { readCellSettings } from '../config/service.js';
import type { Vault } from '../vault/vault.js';
import { cellAddress, cellInterfaceAddress } from '../wireguard/addresses.js';
import { generateKeyPair, publicKeyOf } from '../wireguard/keys.js';
import {
  WireGuardInterface,
  type ApplyResult,
  type WireGuardInterfaceOptions,
  type WireGuardStatus,
} from '../wireguard/interface.js';
import type { AuditLog } from '../audit/service.js';
import type { WgPeer } from '../wireguard/config.js';
import type { WireGuardPeerStatus } from '../wireguard/status.js';
import { expiredButOpen, insertTraffic, listLivePeers, listPeerKeys, peersWithKeys, pruneTraffic } from './queries.js';
import { isLive, peerSecret, syncPeerLogin } from './service.js';

/** How old a `wg show` snapshot may be before a read refreshes it, and how old it may be served while that runs. */
export const SNAPSHOT_FRESH_MS = 2_000;
export const SNAPSHOT_STALE_MS = 15_000;

/** PSK decryptions run at once when loading the live peers (start-up with thousands of peers). */
export const PSK_DECRYPTS_IN_FLIGHT = 16;

/** What PeerNetwork needs of the interface (WireGuardInterface; a stand-in in unit tests). */
export type LiveInterface = Pick<
  WireGuardInterface,
  'running' | 'start' | 'apply' | 'applyPeerChanges' | 'status' | 'stop'
> &
  Partial<Pick<WireGuardInterface, 'shutdown'>>;

/** What a drift check found changed on the interface behind the cell's back (and put back). */
export interface DriftReport {
  /** Peer names (or public keys, for peers the cell does not know) per kind of difference. */
  missing: string[];
  unexpected: string[];
  changed: string[];
}

/** Names listed per kind in a drift audit entry; the counts are always whole. */
const DRIFT_NAMES_LISTED = 50;
/** Traffic samples written per transaction (5 values each: under SQLite's limit on bound parameters). */
const SAMPLES_PER_TRANSACTION = 500;

const byPublicKey = (peers: WireGuardPeerStatus[]) => new Map(peers.map((p) => [p.publicKey, p]));

/** The cell's own WireGuard private key, in the vault. */
export const CELL_KEY_SECRET = 'wireguard/private_key';

/**
 * Every peer's PSK in one vault secret, by public key (`{"v":1,"psks":{…}}`): start-up decrypts
 * this one secret instead of one per peer (10,000 age decryptions took ~10 s on 2 cores). It is a
 * copy: each peer's own `peer/<id>/psk` stays the source, and a PSK missing here is read from there.
 * Keyed by public key, which is unique to a peer for good (ids can be reused after a delete). A
 * PSK never changes while its peer exists; a future PSK rotation must write this copy too.
 */
export const PSK_BUNDLE_SECRET = 'wireguard/psk-bundle';
/** How long after a peer is added or deleted the bundle is rewritten (one write for a burst). */
export const PSK_BUNDLE_SAVE_DELAY_MS = 5_000;

/**
 * Keeps the live WireGuard interface in step with the peers table: brings it up once setup is
 * complete, applies each peer change to just that peer, checks now and then that nothing changed
 * the interface behind its back (and repairs and audits what did), closes expired peers, and samples
 * traffic counters into the database. start()/stop(); nothing here throws when the machine
 * cannot run WireGuard — the interface then reports running:false with the reason.
 */
export class PeerNetwork {
  private iface: LiveInterface | undefined;
  private publicKey: string | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** PSKs decrypted once: re-applying 10,000 peers must not mean 10,000 vault decryptions. */
  private readonly pskCache = new Map<number, string>();
  private notStarted = 'setup is not complete';
  /** PSK_BUNDLE_SECRET as last read or written (public key → PSK), and whether the peers moved on since. */
  private bundle: Map<string, string> | undefined;
  private bundleDirty = false;
  private bundleTimer: NodeJS.Timeout | undefined;
  private bundleSaving: Promise<void> | undefined;
  /** The interface coming up (start() in flight), so status can say so and stop() can wait for it. */
  private starting: Promise<void> | undefined;
  /** The apply in progress, and at most one more queued behind it that every later caller shares. */
  private applying: Promise<void> | undefined;
  private queuedApply: Promise<void> | undefined;
  /** Public keys of peers changed since the last apply began; the next one applies just them. */
  private readonly pendingKeys = new Set<string>();
  /** A full apply (every live peer, diffed against `wg show dump`) was asked for. */
  private fullPending = false;
  private drifting: Promise<DriftReport | undefined> | undefined;
  /** Applies and drift checks touch the interface one at a time, in order. */
  private lane: Promise<unknown> = Promise.resolve();
  /** `wg show` costs ~60 ms with 10,000 peers: lists read a snapshot at most a few seconds old. */
  private snapshot: { at: number; byKey: Map<string, WireGuardPeerStatus> } | undefined;
  private refreshing: Promise<Map<string, WireGuardPeerStatus>> | undefined;
  /** Peers of the interface that are not the cell's own devices: the linked cells' site-to-site peers. */
  extraPeers: (() => Promise<WgPeer[]>) | undefined;
  /** Told the tunnel address (no prefix) when the interface comes up, and null when it goes. */
  private interfaceListener: ((address: string | null) => void) | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly vault: Vault,
    private readonly config: CellConfig,
    private readonly logger: Logger,
    private readonly opts: {
      sampleEveryMs?: number;
      expiryEveryMs?: number;
      keepTrafficDays?: number;
      /** How often to compare the live interface with the database and repair it; 0 = never. */
      driftCheckMs?: number;
      /** Where drift checks record what they found; without it they only log. */
      audit?: AuditLog;
      /** Unit tests pass a stand-in; the cell uses the real interface. */
      createInterface?: (options: WireGuardInterfaceOptions) => LiveInterface;
    } = {},
  ) {}

  /** The cell's public key (creating the key pair on first use). */
  async cellPublicKey(): Promise<string> {
    this.publicKey ??= publicKeyOf(await this.cellPrivateKey());
    return this.publicKey;
  }

  private async cellPrivateKey(): Promise<string> {
    const existing = await this.vault.get(CELL_KEY_SECRET);
    if (existing) return existing;
    const { privateKey } = generateKeyPair();
    await this.vault.put(CELL_KEY_SECRET, privateKey);
    return privateKey;
  }

  /** `fn` learns the tunnel address when the interface comes up (null when it goes): the tunnel listener. */
  onInterfaceChange(fn: (address: string | null) => void): void {
    this.interfaceListener = fn;
  }

  /** Brings the interface up with every live peer. Call when setup is (or becomes) complete. */
  start(): Promise<void> {
    this.starting ??= this.bringUp().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async bringUp(): Promise<void> {
    if (this.iface) return;
    const { network } = await readCellSettings(this.db);
    const create =
      this.opts.createInterface ?? ((options: WireGuardInterfaceOptions) => new WireGuardInterface(options));
    const iface = create({
      name: this.config.wireguard.interface,
      privateKey: await this.cellPrivateKey(),
      listenPort: network.wireguard_port,
      address: cellInterfaceAddress(network.subnet),
      configDir: join(this.config.dataDir, 'wireguard'),
      dataDir: this.config.dataDir,
      persist: this.config.wireguard.keepUpOnStop,
      forwardBetweenPeers: this.config.wireguard.forwardBetweenPeers,
      netns: this.config.wireguard.netns ?? undefined,
      mode: this.config.wireguard.mode,
      logger: this.logger,
    });
    // Published only once up: until then status() says "starting" and sync() has nothing to apply to.
    await this.loadBundle();
    await iface.start(await this.livePeers());
    if (this.bundleDirty) this.scheduleBundleSave(0);
    this.iface = iface;
    const every = (ms: number, job: () => Promise<unknown>, what: string) => {
      const t = setInterval(
        () => void job().catch((err) => this.logger.warn(`${what} failed`, { error: String(err) })),
        ms,
      );
      t.unref();
      this.timers.push(t);
    };
    if (iface.running) this.interfaceListener?.(cellAddress(network.subnet));
    every(this.opts.expiryEveryMs ?? 30_000, () => this.closeExpired(), 'peer expiry');
    every(this.opts.sampleEveryMs ?? 60_000, () => this.sampleTraffic(), 'traffic sampling');
    const driftMs = this.opts.driftCheckMs ?? 300_000;
    if (driftMs > 0) every(driftMs, () => this.checkDrift(), 'wireguard drift check');
  }

  /**
   * Stops managing the interface. It stays up (wireguard.keep_up_on_stop, the default) for the next
   * start to adopt, unless `shutdown` asks for the end of the VPN.
   */
  async stop({ shutdown = false }: { shutdown?: boolean } = {}): Promise<void> {
    await this.starting?.catch(() => undefined);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.drifting?.catch(() => undefined);
    clearTimeout(this.bundleTimer);
    this.bundleTimer = undefined;
    await this.bundleSaving?.catch(() => undefined);
    if (this.bundleDirty) {
      await this.saveBundle().catch((err) => this.logger.warn('saving the PSK bundle failed', { error: String(err) }));
    }
    if (this.iface) this.interfaceListener?.(null);
    if (shutdown && this.iface?.shutdown) await this.iface.shutdown();
    else await this.iface?.stop();
    this.iface = undefined;
    this.snapshot = undefined;
  }

  /** Restart with new settings (listen port, subnet): the interface is made again. */
  async restart(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (!this.iface) return;
    await this.stop({ shutdown: true });
    await this.start();
  }

  /** The server side of every live peer: its address, public key and PSK. */
  async livePeers(): Promise<WgPeer[]> {
    const now = nowIso();
    const rows = await listLivePeers(this.db, now);
    // Each uncached PSK is one age decryption (~1 ms; its X25519 step runs on libuv's pool): a few in
    // flight at once keep the pool and the main thread both busy — about 1.4× faster at start-up.
    const psks: Array<string | undefined> = new Array(rows.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < rows.length; i = next++) psks[i] = await this.pskOf(rows[i]!.id, rows[i]!.public_key);
    };
    await Promise.all(Array.from({ length: Math.min(PSK_DECRYPTS_IN_FLIGHT, rows.length) }, worker));
    const own = rows.map((row, i) => ({
      publicKey: row.public_key,
      presharedKey: psks[i],
      allowedIps: [`${row.address}/32`],
    }));
    return this.extraPeers ? [...own, ...(await this.extraPeers())] : own;
  }

  async psk(peerId: number): Promise<string | undefined> {
    let psk = this.pskCache.get(peerId);
    if (psk === undefined) {
      psk = await this.vault.get(peerSecret(peerId, 'psk'));
      if (psk !== undefined) this.pskCache.set(peerId, psk);
    }
    return psk;
  }

  /** From the cache, else the bundle, else the peer's own vault secret (and then the bundle is behind). */
  private async pskOf(peerId: number, publicKey: string): Promise<string | undefined> {
    const cached = this.pskCache.get(peerId) ?? this.bundle?.get(publicKey);
    if (cached !== undefined) {
      this.pskCache.set(peerId, cached);
      return cached;
    }
    const psk = await this.psk(peerId);
    if (psk !== undefined) this.bundleDirty = true;
    return psk;
  }

  /** A deleted peer: its PSK leaves the cache now, and the bundle soon after. */
  forget(peerId: number): void {
    this.pskCache.delete(peerId);
    this.scheduleBundleSave();
  }

  /** A new peer's PSK, known in the clear when it was made: its apply need not decrypt it again. */
  rememberPsk(peerId: number, psk: string): void {
    this.pskCache.set(peerId, psk);
    this.scheduleBundleSave();
  }

  private async loadBundle(): Promise<void> {
    if (this.bundle) return;
    this.bundle = new Map();
    try {
      const text = await this.vault.get(PSK_BUNDLE_SECRET);
      if (text === undefined) return;
      const parsed = JSON.parse(text) as { v?: unknown; psks?: unknown };
      if (parsed.v !== 1 || typeof parsed.psks !== 'object' || parsed.psks === null) throw new Error('unknown format');
      for (const [key, psk] of Object.entries(parsed.psks)) if (typeof psk === 'string') this.bundle.set(key, psk);
    } catch (err) {
      // only slower: each PSK is then read from its own secret, and the bundle written again
      this.logger.warn("the PSK bundle could not be read; reading each peer's PSK instead", { error: String(err) });
      this.bundleDirty = true;
    }
  }

  private scheduleBundleSave(delayMs = PSK_BUNDLE_SAVE_DELAY_MS): void {
    this.bundleDirty = true;
    if (this.bundleTimer || (!this.iface && !this.starting)) return; // not started: start() saves it
    this.bundleTimer = setTimeout(() => {
      this.bundleTimer = undefined;
      this.bundleSaving = this.saveBundle()
        .catch((err) => this.logger.warn('saving the PSK bundle failed', { error: String(err) }))
        .finally(() => {
          this.bundleSaving = undefined;
        });
    }, delayMs);
    this.bundleTimer.unref();
  }

  /** Writes the PSK of every peer that exists and whose PSK is known, and nothing of deleted ones. */
  private async saveBundle(): Promise<void> {
    await this.loadBundle(); // what it holds of peers not in the cache is kept
    this.bundleDirty = false;
    const rows = await listPeerKeys(this.db);
    const psks: Record<string, string> = {};
    for (const row of rows) {
      const psk = this.pskCache.get(row.id) ?? this.bundle?.get(row.public_key);
      if (psk !== undefined) psks[row.public_key] = psk;
    }
    await this.vault.put(PSK_BUNDLE_SECRET, JSON.stringify({ v: 1, psks }));
    this.bundle = new Map(Object.entries(psks));
  }

  /**
   * The peers with these public keys changed (added, enabled, disabled, expired, deleted): puts
   * just them on the interface as the peers table now has them, or takes them off — `wg set` /
   * `wg addconf` for those peers alone, no `wg show`, so it costs the same with 10 peers or 10,000.
   * A burst coalesces: while one apply runs, every caller shares one more queued behind it, which
   * reads the rows when it starts — so each caller's committed change is live when its promise
   * resolves, and 100 changes cost two applies, not 100.
   */
  peersChanged(publicKeys: Iterable<string>): Promise<void> {
    for (const key of publicKeys) this.pendingKeys.add(key);
    return this.schedule();
  }

  /**
   * Makes the interface hold every live peer: a full apply, diffed against `wg show dump` (only
   * what differs changes). Per-peer changes use peersChanged; this is for when any peer may differ.
   */
  sync(): Promise<void> {
    this.fullPending = true;
    return this.schedule();
  }

  private schedule(): Promise<void> {
    if (this.queuedApply) return this.queuedApply;
    if (!this.applying) return this.applyNow();
    const next = () => {
      this.queuedApply = undefined;
      return this.applyNow();
    };
    this.queuedApply = this.applying.then(next, next);
    return this.queuedApply;
  }

  private applyNow(): Promise<void> {
    const run: Promise<void> = this.inLane(async () => void (await this.applyPending())).finally(() => {
      if (this.applying === run) this.applying = undefined;
    });
    this.applying = run;
    return run;
  }

  private inLane<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lane.then(fn, fn);
    this.lane = next.catch(() => undefined);
    return next;
  }

  /** Applies what is pending: everything (a full apply) or just the changed peers. Runs in the lane. */
  private async applyPending(): Promise<ApplyResult | undefined> {
    // still coming up: start() reads the peers table after this change committed, or is about to
    if (this.starting) await this.starting.catch(() => undefined);
    const keys = [...this.pendingKeys];
    const full = this.fullPending;
    this.pendingKeys.clear();
    this.fullPending = false;
    if (!this.iface || (!full && keys.length === 0)) return undefined;
    const result = full
      ? await this.iface.apply(await this.livePeers())
      : await this.iface.applyPeerChanges(await this.changeOf(keys));
    if (this.snapshot) this.snapshot.at = 0; // the peer set changed: refresh on next read
    if (!result.applied && result.reason) this.logger.debug('wireguard apply not live', { reason: result.reason });
    return result;
  }

  /** What the interface should hold of these peers now: live ones (re)added whole, the rest removed. */
  private async changeOf(keys: string[]): Promise<{ upsert: WgPeer[]; remove: string[] }> {
    const now = nowIso();
    const rows = await peersWithKeys(this.db, keys);
    const live = rows.filter((r) => isLive(r, now));
    const liveKeys = new Set(live.map((r) => r.public_key));
    const upsert: WgPeer[] = [];
    for (const row of live) {
      const presharedKey = await this.psk(row.id);
      upsert.push({ publicKey: row.public_key, presharedKey, allowedIps: [`${row.address}/32`] });
    }
    return { upsert, remove: keys.filter((k) => !liveKeys.has(k)) };
  }

  /**
   * Compares the live interface (`wg show dump`) with the database and repairs what differs: peers
   * missing from it, peers it should not hold, peers whose allowed IPs, PSK or keepalive were
   * changed behind the cell's back (`wg set` by hand, another tool). What it finds is logged and
   * audited (`wireguard.drift`, actor `system`); nothing found, nothing written. Changes the cell
   * itself has pending are applied first, so they are never mistaken for drift.
   */
  checkDrift(): Promise<DriftReport | undefined> {
    // one at a time: a slow check is not joined by the next tick's
    this.drifting ??= this.findDrift().finally(() => {
      this.drifting = undefined;
    });
    return this.drifting;
  }

  private async findDrift(): Promise<DriftReport | undefined> {
    if (this.starting || !this.iface?.running) return undefined;
    await this.livePeers(); // decrypts any PSK not cached yet, outside the lane: PUTs need not wait for it
    const result = await this.inLane(async () => {
      await this.applyPending();
      if (!this.iface?.running) return undefined;
      return this.iface.apply(await this.livePeers());
    });
    if (this.snapshot) this.snapshot.at = 0;
    if (!result?.applied || !result.changed) return undefined;
    // a change committed while the check ran is the cell's own, on its way: not drift
    const own = (keys: string[]) => keys.filter((k) => !this.pendingKeys.has(k));
    const added = own(result.changed.added);
    const removed = own(result.changed.removed);
    const updated = own(result.changed.updated);
    if (added.length + removed.length + updated.length === 0) return undefined;
    const names = await this.namesOf([...added, ...removed, ...updated]);
    const report: DriftReport = {
      missing: added.map((k) => names.get(k) ?? k),
      unexpected: removed.map((k) => names.get(k) ?? k),
      changed: updated.map((k) => names.get(k) ?? k),
    };
    const details = Object.fromEntries(
      Object.entries(report).flatMap(([kind, list]) => [
        [kind, list.slice(0, DRIFT_NAMES_LISTED)],
        [`${kind}_count`, list.length],
      ]),
    );
    this.logger.warn('wireguard interface drifted from the database; repaired', details);
    await this.opts.audit?.append({
      actor: 'system',
      action: 'wireguard.drift',
      targetType: 'wireguard',
      targetId: this.config.wireguard.interface,
      result: 'ok',
      details,
    });
    return report;
  }

  private async namesOf(keys: string[]): Promise<Map<string, string>> {
    return new Map((await peersWithKeys(this.db, keys)).map((r) => [r.public_key, r.name]));
  }

  async status(): Promise<
    | WireGuardStatus
    | { interface: string; running: false; reason: string; peers: WireGuardPeerStatus[]; publicKey: string | null }
  > {
    if (!this.iface) {
      const reason = this.starting ? 'starting: loading peers and bringing the interface up' : this.notStarted;
      return { interface: this.config.wireguard.interface, running: false, reason, peers: [], publicKey: null };
    }
    const status = await this.iface.status();
    if (status.running) this.snapshot = { at: Date.now(), byKey: byPublicKey(status.peers) };
    return status;
  }

  /**
   * Live counters by public key, from a snapshot at most SNAPSHOT_FRESH_MS old; a stale one (up to
   * SNAPSHOT_STALE_MS) answers at once while one shared refresh runs behind it. Empty, without
   * running anything, when the interface is not running.
   */
  async liveByKey(): Promise<Map<string, WireGuardPeerStatus>> {
    if (!this.iface?.running) return new Map();
    const age = this.snapshot ? Date.now() - this.snapshot.at : Infinity;
    if (age < SNAPSHOT_FRESH_MS) return this.snapshot!.byKey;
    this.refreshing ??= this.status()
      .then((s) => (s.running && this.snapshot ? this.snapshot.byKey : new Map<string, WireGuardPeerStatus>()))
      .finally(() => {
        this.refreshing = undefined;
      });
    if (this.snapshot && Date.now() - this.snapshot.at < SNAPSHOT_STALE_MS) {
      this.refreshing.catch(() => undefined);
      return this.snapshot.byKey;
    }
    return this.refreshing;
  }

  /** Expired peers leave the interface and their logins close; their rows stay (an admin may extend them). */
  async closeExpired(): Promise<number> {
    const expired = await expiredButOpen(this.db);
    if (expired.length === 0) return 0;
    await this.db.transaction().execute(async (trx) => {
      for (const peer of expired) await syncPeerLogin(trx, peer.user_id, false);
    });
    this.logger.info('peers expired', { peers: expired.map((p) => p.name) });
    await this.peersChanged(expired.map((p) => p.public_key));
    return expired.length;
  }

  /** Stores cumulative rx/tx counters per peer; traffic over a period is the difference of samples. */
  async sampleTraffic(): Promise<number> {
    // samples are history: read the counters now, not a cached snapshot
    const status = await this.status();
    if (!status.running || status.peers.length === 0) return 0;
    const live = byPublicKey(status.peers);
    const rows = await listPeerKeys(this.db);
    const ts = nowIso();
    const samples = rows.flatMap((r) => {
      const s = live.get(r.public_key);
      return s
        ? [
            {
              peer_id: r.id,
              ts,
              rx_bytes: s.rxBytes,
              tx_bytes: s.txBytes,
              latest_handshake: s.latestHandshake?.toISOString() ?? null,
            },
          ]
        : [];
    });
    if (samples.length === 0) return 0;
    const cutoff = new Date(Date.now() - (this.opts.keepTrafficDays ?? 31) * 86_400_000).toISOString();
    // One short transaction per chunk, not one for all: with 10,000 peers a single one held the
    // connection for tens of ms each minute, and every request meanwhile waited (the p99 of a PUT).
    // Samples need no atomicity across peers: traffic is a difference of one peer's own samples.
    for (let i = 0; i < samples.length; i += SAMPLES_PER_TRANSACTION) {
      const chunk = samples.slice(i, i + SAMPLES_PER_TRANSACTION);
      await this.db.transaction().execute((trx) => insertTraffic(trx, chunk));
    }
    await pruneTraffic(this.db, cutoff);
    return samples.length;
  }

  /** The address peers use to reach the cell inside the tunnel (its DNS, later). */
  async cellTunnelAddress(): Promise<string> {
    return cellAddress((await readCellSettings(this.db)).network.subnet);
  }
}
