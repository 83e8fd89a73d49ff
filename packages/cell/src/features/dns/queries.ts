import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { nowIso } from '../../lib/tokens.js';
import type { DnsRecord } from './config.js';

const COLUMNS = ['id', 'name', 'type', 'value', 'created_at'] as const;

export function listRecords(db: Kysely<Database>) {
  return db.selectFrom('dns_records').select(COLUMNS).orderBy('name').orderBy('type').orderBy('id').execute();
}

export function findRecord(db: Kysely<Database>, id: number) {
  return db.selectFrom('dns_records').select(COLUMNS).where('id', '=', id).executeTakeFirst();
}

/** The record with this name, type and value, if there is one. */
export function findSameRecord(executor: Kysely<Database>, r: DnsRecord) {
  return executor
    .selectFrom('dns_records')
    .select('id')
    .where('name', '=', r.name)
    .where('type', '=', r.type)
    .where('value', '=', r.value)
    .executeTakeFirst();
}

export async function insertRecord(trx: Kysely<Database>, r: DnsRecord) {
  return trx
    .insertInto('dns_records')
    .values({ ...r, created_at: nowIso() })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

export async function deleteRecord(trx: Kysely<Database>, id: number): Promise<boolean> {
  const res = await trx.deleteFrom('dns_records').where('id', '=', id).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}
