import type { Kysely, Transaction, Updateable } from 'kysely';
import type { Database, ServiceAccountsTable } from '../../db/schema.js';

/**
 * The queries of installed services' accounts (`service_accounts`). Every function takes the
 * executor (`db`, or `trx` inside a transaction). The table holds no secret (passwords are vault
 * secrets named by the row id); ACCOUNT_COLUMNS names what is read all the same.
 */
const ACCOUNT_COLUMNS = ['id', 'service_id', 'username', 'peer_id', 'state', 'created_at', 'updated_at'] as const;

export async function findAccount(executor: Kysely<Database>, serviceId: string, username: string) {
  return executor
    .selectFrom('service_accounts')
    .select(ACCOUNT_COLUMNS)
    .where('service_id', '=', serviceId)
    .where('username', '=', username)
    .executeTakeFirst();
}

export type AccountRow = Awaited<ReturnType<typeof findAccount>> & object;

/** A service's active accounts with the name of the peer each belongs to, by username. */
export function listActiveAccounts(executor: Kysely<Database>, serviceId: string) {
  return executor
    .selectFrom('service_accounts')
    .leftJoin('peers', 'peers.id', 'service_accounts.peer_id')
    .select(['service_accounts.username', 'service_accounts.created_at', 'peers.name as peer'])
    .where('service_accounts.service_id', '=', serviceId)
    .where('service_accounts.state', '=', 'active')
    .orderBy('service_accounts.username')
    .execute();
}

/** A peer's accounts; only the active ones with `activeOnly`, by service. */
export function listAccountsOfPeer(executor: Kysely<Database>, peerId: number, activeOnly = false) {
  let q = executor.selectFrom('service_accounts').select(ACCOUNT_COLUMNS).where('peer_id', '=', peerId);
  if (activeOnly) q = q.where('state', '=', 'active');
  return q.orderBy('service_id').execute();
}

/** Accounts waiting to be deleted from their service (of one service, or all). */
export function listTombstones(executor: Kysely<Database>, serviceId?: string): Promise<AccountRow[]> {
  let q = executor.selectFrom('service_accounts').select(ACCOUNT_COLUMNS).where('state', '=', 'deleting');
  if (serviceId) q = q.where('service_id', '=', serviceId);
  return q.execute();
}

export async function hasTombstone(executor: Kysely<Database>): Promise<boolean> {
  const row = await executor
    .selectFrom('service_accounts')
    .select('id')
    .where('state', '=', 'deleting')
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertAccount(
  trx: Transaction<Database>,
  values: { service_id: string; username: string; peer_id: number | null; created_at: string },
): Promise<number> {
  const row = await trx
    .insertInto('service_accounts')
    .values({ ...values, state: 'active', updated_at: values.created_at })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function updateAccount(
  trx: Transaction<Database>,
  id: number,
  patch: Updateable<ServiceAccountsTable>,
): Promise<void> {
  await trx.updateTable('service_accounts').set(patch).where('id', '=', id).execute();
}

/** Deletes an account row; with `onlyTombstone`, only while it still waits for deletion. */
export async function deleteAccount(executor: Kysely<Database>, id: number, onlyTombstone = false): Promise<void> {
  let q = executor.deleteFrom('service_accounts').where('id', '=', id);
  if (onlyTombstone) q = q.where('state', '=', 'deleting');
  await q.execute();
}

/** Deletes every account of a service; returns the ids it deleted. */
export async function deleteAccountsOfService(trx: Transaction<Database>, serviceId: string): Promise<number[]> {
  const rows = await trx.selectFrom('service_accounts').select('id').where('service_id', '=', serviceId).execute();
  await trx.deleteFrom('service_accounts').where('service_id', '=', serviceId).execute();
  return rows.map((r) => r.id);
}
