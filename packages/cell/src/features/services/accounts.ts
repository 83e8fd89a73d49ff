import type { Kysely, Transaction } from 'kysely';
import type { AccountAction, AccountListAction, ServiceManifest, TemplateValues } from '@pic/manifest';
import type { Database } from '../../db/schema.js';
import { errors, HttpError } from '../../http/errors.js';
import { generatePassword, nowIso } from '../../lib/tokens.js';
import { readCellSettings } from '../config/service.js';
import type { PeerDeletionHook } from '../peers/service.js';
import { describeError } from '../store/engine.js';
import { findInstallation, listInstallations, type Installation } from '../store/queries.js';
import { readVaultSecret, serviceSecrets } from '../store/specs.js';
import { parseAccountList, runAccountAction, ServiceActionError } from './actions.js';
import { fillCredentials, type FilledCredential } from './credentials.js';
import { manifestLib } from '../store/manifest-lib.js';
import type { EngineDeps } from '../store/installer.js';
import { findPeer } from '../peers/queries.js';
import {
  deleteAccount,
  deleteAccountsOfService,
  findAccount,
  hasTombstone,
  insertAccount,
  listAccountsOfPeer,
  listActiveAccounts,
  listTombstones,
  updateAccount,
  type AccountRow,
} from './queries.js';

export type { AccountRow } from './queries.js';

/** Usernames the cell provisions: what every first-party service accepts. */
export const USERNAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
const USERNAME = new RegExp(USERNAME_PATTERN);

/** Where an account's generated password lives in the vault (by row id: usernames never shape a secret's name). */
export const accountSecretName = (serviceId: string, accountId: number) => `service/${serviceId}/account/${accountId}`;

const ACCOUNT_PASSWORD_LENGTH = 24;

export interface AccountsDeps extends EngineDeps {
  /** Caddy's HTTPS port when it serves services' subdomains (credentials of web services name it). */
  httpsPort?: number;
}

export interface AccountView {
  username: string;
  peer: string | null;
  created_at: string;
  /** Whether the service's own list has it (null when the service could not be asked). */
  in_service: boolean | null;
}

export interface PeerServiceCredentials {
  service: string;
  name: string;
  username: string;
  credentials: FilledCredential[];
}

/** 502: the service itself refused or failed an account action (the reason carries no secret). */
const serviceFailed = (err: unknown) =>
  err instanceof HttpError
    ? err
    : new HttpError(
        502,
        'service_action_failed',
        err instanceof ServiceActionError ? err.message : `the service failed: ${describeError(err)}`,
      );

/**
 * Accounts inside installed services (ADR 003): the cell generates each password, keeps it in the
 * vault, and provisions it through the manifest's accounts contract. Rows in `service_accounts`
 * record what the cell made; a row in state `deleting` is an account still to be removed from its
 * service (its peer is gone but the service could not be reached), retried until it succeeds.
 */
export class ServiceAccounts {
  constructor(private readonly d: AccountsDeps) {}

  private async values(
    executor: Kysely<Database>,
    manifest: ServiceManifest,
    extra: { username?: string; password?: string } = {},
  ): Promise<TemplateValues> {
    const { identity } = await readCellSettings(executor);
    return {
      domain: identity.domain,
      subdomain: manifest.subdomain,
      secrets: await serviceSecrets(this.d.vault, executor, manifest),
      ...extra,
    };
  }

  private accountsOf(inst: Pick<Installation, 'id' | 'manifest'>) {
    const accounts = inst.manifest.accounts;
    if (!accounts) throw errors.notFound(`service "${inst.id}" has no accounts`);
    return accounts;
  }

  async find(executor: Kysely<Database>, serviceId: string, username: string): Promise<AccountRow | undefined> {
    return findAccount(executor, serviceId, username);
  }

  /** Runs one of the manifest's account actions in the service's containers; `what` names it in errors. */
  private async run(
    executor: Kysely<Database>,
    manifest: ServiceManifest,
    action: AccountAction | AccountListAction,
    extra: { username?: string; password?: string },
    what: string,
  ): Promise<string> {
    const values = await this.values(executor, manifest, extra);
    return runAccountAction(this.d.runtime, this.d.cellId, manifest, action, values, what);
  }

  /** What the service's own list action reports. Throws ServiceActionError. */
  async serviceList(inst: Pick<Installation, 'id' | 'manifest'>): Promise<string[]> {
    const accounts = this.accountsOf(inst);
    const out = await this.run(this.d.db, inst.manifest, accounts.list, {}, `listing the accounts of ${inst.id}`);
    return parseAccountList(out, accounts.list.output);
  }

  /**
   * Whether the service's account contract answers (its `list`): part of being healthy for a
   * service with accounts. Resolves with the reason it does not, or null (also for a service without accounts).
   */
  async contractProblem(inst: Pick<Installation, 'id' | 'manifest'>): Promise<string | null> {
    if (!inst.manifest.accounts) return null;
    try {
      await this.serviceList(inst);
      return null;
    } catch (err) {
      return `the account contract does not answer: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** The cell's accounts of a service, each checked against the service's own list when it answers. */
  async list(
    inst: Installation,
  ): Promise<{ accounts: AccountView[]; unmanaged: string[]; service_error: string | null }> {
    this.accountsOf(inst);
    const rows = await listActiveAccounts(this.d.db, inst.id);
    let inService: Set<string> | undefined;
    let serviceError: string | null = null;
    try {
      inService = new Set(await this.serviceList(inst));
    } catch (err) {
      serviceError = describeError(err);
    }
    const managed = new Set(rows.map((r) => r.username));
    return {
      accounts: rows.map((r) => ({
        username: r.username,
        peer: r.peer ?? null,
        created_at: r.created_at,
        in_service: inService ? inService.has(r.username) : null,
      })),
      unmanaged: inService ? [...inService].filter((u) => !managed.has(u)).sort() : [],
      service_error: serviceError,
    };
  }

  /**
   * Provisions an account for a peer (username = the peer's name) or a bare username, inside `trx`:
   * the row and the vault secret are written first and the service is asked last, so a refusal by
   * the service rolls everything back. The password is never returned here; the credentials
   * endpoints hand it out.
   */
  async create(
    trx: Transaction<Database>,
    inst: Installation,
    input: { peer?: string; username?: string },
  ): Promise<AccountView> {
    const accounts = this.accountsOf(inst);
    let peerId: number | null = null;
    let username: string;
    if (input.peer !== undefined) {
      const peer = await findPeer(trx, input.peer);
      if (!peer) throw errors.notFound(`no peer "${input.peer}"`);
      peerId = peer.id;
      username = peer.name;
    } else {
      username = input.username!;
    }
    if (!USERNAME.test(username))
      throw errors.validation({ username: 'must be 1-64 of a-z 0-9 . _ -, starting with a letter or digit' });

    const existing = await this.find(trx, inst.id, username);
    if (existing?.state === 'active')
      throw errors.conflict(`${inst.id} already has an account "${username}"`, { username: 'exists already' });
    const now = nowIso();
    let id: number;
    if (existing) {
      // A tombstone waiting to be deprovisioned: the create action resets it (it is idempotent).
      await updateAccount(trx, existing.id, { state: 'active', peer_id: peerId, created_at: now, updated_at: now });
      id = existing.id;
    } else {
      id = await insertAccount(trx, { service_id: inst.id, username, peer_id: peerId, created_at: now });
    }
    const password = generatePassword(ACCOUNT_PASSWORD_LENGTH);
    await this.d.vault.put(accountSecretName(inst.id, id), password, trx);
    try {
      const what = `creating account "${username}" in ${inst.id}`;
      await this.run(trx, inst.manifest, accounts.create, { username, password }, what);
    } catch (err) {
      throw serviceFailed(err);
    }
    return { username, peer: input.peer ?? null, created_at: now, in_service: true };
  }

  /**
   * A new generated password for an account, inside `trx`: the vault first, the service last (its
   * create action sets the password of an existing account), so a refusal leaves the old one.
   */
  async rotate(
    trx: Transaction<Database>,
    inst: Installation,
    username: string,
  ): Promise<{ username: string; rotated_at: string }> {
    const accounts = this.accountsOf(inst);
    const row = await this.find(trx, inst.id, username);
    if (row?.state !== 'active') throw errors.notFound(`${inst.id} has no account "${username}"`);
    const now = nowIso();
    await updateAccount(trx, row.id, { updated_at: now });
    const password = generatePassword(ACCOUNT_PASSWORD_LENGTH);
    await this.d.vault.put(accountSecretName(inst.id, row.id), password, trx);
    try {
      const what = `setting a new password for "${username}" in ${inst.id}`;
      await this.run(trx, inst.manifest, accounts.create, { username, password }, what);
    } catch (err) {
      throw serviceFailed(err);
    }
    return { username, rotated_at: now };
  }

  /** Deprovisions an account inside `trx`: the service is asked last, and a failure rolls the cell's side back too. */
  async remove(trx: Transaction<Database>, inst: Installation, username: string): Promise<AccountRow> {
    const accounts = this.accountsOf(inst);
    const row = await this.find(trx, inst.id, username);
    if (row?.state !== 'active') throw errors.notFound(`${inst.id} has no account "${username}"`);
    await deleteAccount(trx, row.id);
    await this.d.vault.delete(accountSecretName(inst.id, row.id), trx);
    try {
      await this.run(
        trx,
        inst.manifest,
        accounts.delete,
        { username },
        `deleting account "${username}" from ${inst.id}`,
      );
    } catch (err) {
      throw serviceFailed(err);
    }
    return row;
  }

  /** The filled connection info of one account (this reads its password from the vault). */
  async credentials(executor: Kysely<Database>, inst: Installation, username: string): Promise<FilledCredential[]> {
    this.accountsOf(inst);
    const row = await this.find(executor, inst.id, username);
    if (row?.state !== 'active') throw errors.notFound(`${inst.id} has no account "${username}"`);
    return this.fill(executor, inst, row);
  }

  private async fill(executor: Kysely<Database>, inst: Installation, row: AccountRow): Promise<FilledCredential[]> {
    const password = await readVaultSecret(this.d.vault, executor, accountSecretName(inst.id, row.id));
    if (password === undefined) throw new Error(`the vault has no password for account ${row.id} of ${inst.id}`);
    const { identity } = await readCellSettings(executor);
    const { renderTemplate } = await manifestLib();
    const values = { username: row.username, password, domain: identity.domain };
    return fillCredentials(inst.manifest, values, renderTemplate, this.d.httpsPort);
  }

  /** Connection info for every installed service the peer has an account in. */
  async forPeer(executor: Kysely<Database>, peerId: number): Promise<PeerServiceCredentials[]> {
    const rows = await listAccountsOfPeer(executor, peerId, true);
    const out: PeerServiceCredentials[] = [];
    for (const row of rows) {
      const inst = await findInstallation(executor, row.service_id);
      if (inst?.state !== 'installed') continue;
      out.push({
        service: inst.id,
        name: inst.manifest.name,
        username: row.username,
        credentials: await this.fill(executor, inst, row),
      });
    }
    return out;
  }

  /**
   * Run inside the transaction that deletes a peer: every account of the peer loses its password
   * at once, and is deleted from its service. When a service cannot be reached (stopped, not
   * installed, engine down), the row stays as a tombstone and the deletion is retried later;
   * the peer's deletion is never blocked by a broken service.
   */
  readonly peerDeletionHook: PeerDeletionHook = async (trx, peer) => {
    const rows = await listAccountsOfPeer(trx, peer.id);
    for (const row of rows) {
      await this.d.vault.delete(accountSecretName(row.service_id, row.id), trx);
      const inst = await findInstallation(trx, row.service_id);
      let error: string | undefined;
      if (inst?.state === 'installed' && inst.manifest.accounts) {
        try {
          await this.deleteFromService(trx, inst.manifest, inst.manifest.accounts.delete, row);
        } catch (err) {
          error = describeError(err);
        }
      } else {
        error = `service ${row.service_id} is not installed`;
      }
      if (error === undefined) await deleteAccount(trx, row.id);
      else await updateAccount(trx, row.id, { state: 'deleting', peer_id: null, updated_at: nowIso() });
      this.d.audit.appendIn(trx, {
        actor: 'system',
        action: 'services.account.deprovision',
        targetType: 'service_account',
        targetId: `${row.service_id}/${row.username}`,
        result: error === undefined ? 'ok' : 'error',
        details: {
          peer: peer.name,
          reason: 'peer deleted',
          ...(error !== undefined ? { error, retry: 'pending' } : {}),
        },
      });
      if (error !== undefined)
        this.d.logger.warn('account deprovisioning deferred', {
          service: row.service_id,
          username: row.username,
          error,
        });
    }
  };

  /** Retries pending deletions (tombstones) in installed services; returns how many succeeded. */
  async retryTombstones(serviceId?: string): Promise<number> {
    const rows = await listTombstones(this.d.db, serviceId);
    if (rows.length === 0) return 0;
    const installed = new Map(
      (await listInstallations(this.d.db)).filter((i) => i.state === 'installed').map((i) => [i.id, i]),
    );
    let done = 0;
    for (const row of rows) {
      const inst = installed.get(row.service_id);
      if (!inst?.manifest.accounts) continue;
      try {
        await this.deleteFromService(this.d.db, inst.manifest, inst.manifest.accounts.delete, row);
      } catch (err) {
        this.d.logger.warn('account deprovisioning still pending', {
          service: row.service_id,
          username: row.username,
          error: describeError(err),
        });
        continue;
      }
      await this.d.db.transaction().execute(async (trx) => {
        await deleteAccount(trx, row.id, true);
        this.d.audit.appendIn(trx, {
          actor: 'system',
          action: 'services.account.deprovision',
          targetType: 'service_account',
          targetId: `${row.service_id}/${row.username}`,
          result: 'ok',
          details: { reason: 'retried pending deletion' },
        });
      });
      done++;
    }
    return done;
  }

  /** Purge: the service's accounts and their passwords go with its data. */
  async purge(trx: Transaction<Database>, serviceId: string): Promise<number> {
    const ids = await deleteAccountsOfService(trx, serviceId);
    for (const id of ids) await this.d.vault.delete(accountSecretName(serviceId, id), trx);
    return ids.length;
  }

  /** Whether any account waits to be deleted from its service. */
  hasPendingDeletions(): Promise<boolean> {
    return hasTombstone(this.d.db);
  }

  private deleteFromService(
    executor: Kysely<Database>,
    manifest: ServiceManifest,
    action: AccountAction,
    row: Pick<AccountRow, 'service_id' | 'username'>,
  ): Promise<string> {
    const what = `deleting account "${row.username}" from ${row.service_id}`;
    return this.run(executor, manifest, action, { username: row.username }, what);
  }
}
