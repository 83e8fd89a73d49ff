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
import { WireGuardInterface, type WireGuardInterfaceOptions, type WireGuardStatus } from '../wireguard/interface.js';
import type { WgPeer } from '../wireguard/config.js';
import type { WireGuardPeerStatus } from '../wireguard/status.js';
import { expiredButOpen, peerSecret, syncPeerLogin } from './service.js';

/** How old a `wg show` snapshot may be before a read refreshes it, and how old it may be served while that runs. */
export const SNAPSHOT_FRESH_MS = 2_000;
export const SNAPSHOT_STALE_MS = 15_000;

/** PSK decryptions run at once when loading the live peers (start-up with thousands of peers). */
export const PSK_DECRYPTS_IN_FLIGHT = 16;

/** What PeerNetwork needs of the interface (WireGuardInterface; a stand-in in unit tests). */
export type LiveInterface = Pick<WireGuardInterface, 'running' | 'start' | 'apply' | 'status' | 'stop'>;

const byPublicKey = (peers: WireGuardPeerStatus[]) => new Map(peers.map((p) => [p.publicKey, p]));

/** The cell's own WireGuard private key, in the vault. */
export const CELL_KEY_SECRET = 'wireguard/private_key';

/**
 * Keeps the live WireGuard interface in step with the peers table: brings it up once setup is
 * complete, re-applies (only the peers that differ) after every peer change, closes expired peers, and samples
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
  /** The interface coming up (start() in flight), so status can say so and stop() can wait for it. */
  private starting: Promise<void> | undefined;
  /** The apply in progress, and at most one more queued behind it that every later caller shares. */
  private applying: Promise<void> | undefined;
  private queuedApply: Promise<void> | undefined;
  /** `wg show` costs ~60 ms with 10,000 peers: lists read a snapshot at most a few seconds old. */
  private snapshot: { at: number; byKey: Map<string, WireGuardPeerStatus> } | undefined;
  private refreshing: Promise<Map<string, WireGuardPeerStatus>> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly vault: Vault,
    private readonly config: CellConfig,
    private readonly logger: Logger,
    private readonly opts: {
      sampleEveryMs?: number;
      expiryEveryMs?: number;
      keepTrafficDays?: number;
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
    const create = this.opts.createInterface ?? ((options: WireGuardInterfaceOptions) => new WireGuardInterface(options));
    const iface = create({
      name: this.config.wireguard.interface,
      privateKey: await this.cellPrivateKey(),
      listenPort: network.wireguard_port,
      address: cellInterfaceAddress(network.subnet),
      configDir: join(this.config.dataDir, 'wireguard'),
      netns: this.config.wireguard.netns ?? undefined,
      mode: this.config.wireguard.mode,
      logger: this.logger,
    });
    // Published only once up: until then status() says "starting" and sync() has nothing to apply to.
    await iface.start(await this.livePeers());
    this.iface = iface;
    const every = (ms: number, job: () => Promise<unknown>, what: string) => {
      const t = setInterval(() => void job().catch((err) => this.logger.warn(`${what} failed`, { error: String(err) })), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.expiryEveryMs ?? 30_000, () => this.closeExpired(), 'peer expiry');
    every(this.opts.sampleEveryMs ?? 60_000, () => this.sampleTraffic(), 'traffic sampling');
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.iface?.stop();
    this.iface = undefined;
    this.snapshot = undefined;
  }

  /** Restart with new settings (listen port, subnet). */
  async restart(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (!this.iface) return;
    await this.stop();
    await this.start();
  }

  /** The server side of every live peer: its address, public key and PSK. */
  async livePeers(): Promise<WgPeer[]> {
    const now = nowIso();
    const rows = await this.db
      .selectFrom('peers')
      .select(['id', 'public_key', 'address'])
      .where('enabled', '=', 1)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('id')
      .execute();
    // Each uncached PSK is one age decryption (~1 ms; its X25519 step runs on libuv's pool): a few in
    // flight at once keep the pool and the main thread both busy — about 1.4× faster at start-up.
    const psks: Array<string | undefined> = new Array(rows.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < rows.length; i = next++) psks[i] = await this.psk(rows[i]!.id);
    };
    await Promise.all(Array.from({ length: Math.min(PSK_DECRYPTS_IN_FLIGHT, rows.length) }, worker));
    return rows.map((row, i) => ({ publicKey: row.public_key, presharedKey: psks[i], allowedIps: [`${row.address}/32`] }));
  }

  async psk(peerId: number): Promise<string | undefined> {
    let psk = this.pskCache.get(peerId);
    if (psk === undefined) {
      psk = await this.vault.get(peerSecret(peerId, 'psk'));
      if (psk !== undefined) this.pskCache.set(peerId, psk);
    }
    return psk;
  }

  forget(peerId: number): void {
    this.pskCache.delete(peerId);
  }

  /**
   * Re-applies the live peers to the interface (only what differs changes: other tunnels are untouched). A burst of
   * changes coalesces: while one apply runs, every caller shares one more queued behind it, which
   * reads the peers table when it starts — so each caller's committed change is live when its
   * promise resolves, and 100 changes cost two applies, not 100.
   */
  sync(): Promise<void> {
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
    const run: Promise<void> = this.applyLivePeers().finally(() => {
      if (this.applying === run) this.applying = undefined;
    });
    this.applying = run;
    return run;
  }

  private async applyLivePeers(): Promise<void> {
    // still coming up: start() reads the peers table after this change committed, or is about to
    if (this.starting) await this.starting.catch(() => undefined);
    if (!this.iface) return;
    const result = await this.iface.apply(await this.livePeers());
    if (this.snapshot) this.snapshot.at = 0; // the peer set changed: refresh on next read
    if (!result.applied && result.reason) this.logger.debug('wireguard apply not live', { reason: result.reason });
  }

  async status(): Promise<WireGuardStatus | { interface: string; running: false; reason: string; peers: WireGuardPeerStatus[]; publicKey: string | null }> {
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
    await this.sync();
    return expired.length;
  }

  /** Stores cumulative rx/tx counters per peer; traffic over a period is the difference of samples. */
  async sampleTraffic(): Promise<number> {
    // samples are history: read the counters now, not a cached snapshot
    const status = await this.status();
    if (!status.running || status.peers.length === 0) return 0;
    const live = byPublicKey(status.peers);
    const rows = await this.db.selectFrom('peers').select(['id', 'public_key']).execute();
    const ts = nowIso();
    const samples = rows.flatMap((r) => {
      const s = live.get(r.public_key);
      return s ? [{ peer_id: r.id, ts, rx_bytes: s.rxBytes, tx_bytes: s.txBytes, latest_handshake: s.latestHandshake?.toISOString() ?? null }] : [];
    });
    if (samples.length === 0) return 0;
    const cutoff = new Date(Date.now() - (this.opts.keepTrafficDays ?? 31) * 86_400_000).toISOString();
    await this.db.transaction().execute(async (trx) => {
      // chunks keep each INSERT under SQLite's bound-parameter limit
      for (let i = 0; i < samples.length; i += 1000) await trx.insertInto('peer_traffic').values(samples.slice(i, i + 1000)).execute();
      await trx.deleteFrom('peer_traffic').where('ts', '<', cutoff).execute();
    });
    return samples.length;
  }

  /** The address peers use to reach the cell inside the tunnel (its DNS, later). */
  async cellTunnelAddress(): Promise<string> {
    return cellAddress((await readCellSettings(this.db)).network.subnet);
  }
}
