import type { CellConfig } from './config.js';
import type { Db } from './db/database.js';
import type { Logger } from './lib/logger.js';
import type { SqliteSessionStore } from './http/session.js';
import type { SlidingWindowLimiter, SlottedWindowLimiter } from './http/rate-limit.js';
import type { KnownHosts } from './http/hosts.js';
import type { SetupState } from './features/setup/service.js';
import type { StatusRegistry } from './features/status/service.js';
import type { HealthMonitor } from './features/health/service.js';
import type { AuditLog } from './features/audit/service.js';
import type { Vault } from './features/vault/vault.js';
import type { PeerNetwork } from './features/peers/network.js';
import type { PeerDeletionHook } from './features/peers/service.js';
import type { Store } from './features/store/service.js';
import type { InstalledServices } from './features/services/service.js';
import type { CaddyService } from './features/caddy/service.js';
import type { DnsService } from './features/dns/service.js';
import type { ConsoleAssets } from './features/console/service.js';
import type { CellLinks } from './features/cells/service.js';

/** Told after a commit that changed peers (linked cells push the difference). */
export interface PeerChangeHook {
  changed(): void;
}

/** Everything a feature's routes may use, built once by the cell and passed in (no globals). */
export interface CellDeps {
  config: CellConfig;
  db: Db;
  logger: Logger;
  sessions: SqliteSessionStore;
  loginLimiter: SlidingWindowLimiter;
  apiLimiter: SlottedWindowLimiter;
  /** The Host and Origin names the cell answers to (refreshed after settings change). */
  knownHosts: KnownHosts;
  setup: SetupState;
  status: StatusRegistry;
  health: HealthMonitor;
  audit: AuditLog;
  peerNetwork: PeerNetwork;
  /** Run inside the transaction that deletes a peer (the store removes its service accounts). */
  peerDeletionHooks: PeerDeletionHook[];
  vault: Vault;
  /** The signed store: catalog, container engine, install/remove jobs. */
  store: Store;
  /** Installed services: their mounted routes (/api/<id>/…) and per-peer accounts (uses the store, one way). */
  services: InstalledServices;
  /** Caddy in front of the cell on the tunnel address: TLS, the cell's domain, services' subdomains. */
  caddy: CaddyService;
  /** The resolver on the tunnel address: the cell's names (split horizon), custom records, forwarding. */
  dns: DnsService;
  /** Linked cells: invites, links, peer-sync. */
  cells: CellLinks;
  /** Told after every committed peer change (features/cells pushes them to linked cells). */
  peerChanges?: PeerChangeHook;
  /** The built web console served at / (packages/console/dist). */
  console: ConsoleAssets;
  version: string;
  startedAt: number;
}
