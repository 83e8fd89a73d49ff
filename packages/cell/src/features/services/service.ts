import type { ServiceManifest } from '@pic/manifest';
import type { Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { ServiceSide } from '../store/service.js';
import { ServiceAccounts, type AccountsDeps } from './accounts.js';
import { ServiceMounts } from './mounts.js';

/** The store's engine and cell id with the database, vault and audit log: accounts run the manifests' account actions. */
export type InstalledServicesDeps = AccountsDeps;

/**
 * The installed services' side of the store: their mounted routes (/api/<id>/…) and their
 * per-peer accounts. The dependency runs one way: this feature uses the store's modules
 * (installations, engine, specs), and the store reaches this side only through the `ServiceSide`
 * interface it declares, handed to it at start-up (cell.ts: `store.attach(services)`).
 */
export class InstalledServices implements ServiceSide {
  readonly mounts = new ServiceMounts();
  readonly accounts: ServiceAccounts;

  constructor(d: InstalledServicesDeps) {
    this.accounts = new ServiceAccounts(d);
  }

  mount(id: string, manifest: ServiceManifest): void {
    this.mounts.mount(id, manifest);
  }

  unmount(id: string): void {
    this.mounts.unmount(id);
  }

  mounted(): string[] {
    return this.mounts.mounted();
  }

  manifest(id: string): ServiceManifest | undefined {
    return this.mounts.manifest(id);
  }

  hasPendingDeletions(): Promise<boolean> {
    return this.accounts.hasPendingDeletions();
  }

  retryTombstones(serviceId?: string): Promise<number> {
    return this.accounts.retryTombstones(serviceId);
  }

  contractProblem(id: string, manifest: ServiceManifest): Promise<string | null> {
    return this.accounts.contractProblem({ id, manifest });
  }

  purge(trx: Transaction<Database>, serviceId: string): Promise<number> {
    return this.accounts.purge(trx, serviceId);
  }
}
