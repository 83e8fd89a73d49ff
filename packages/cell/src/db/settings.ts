import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { nowIso } from '../lib/tokens.js';

/** Small JSON documents keyed by name (setup progress, cell identity, network). Pass `db` or a `trx`. */
export async function readSetting<T>(db: Kysely<Database>, key: string): Promise<T | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  return row ? (JSON.parse(row.value) as T) : undefined;
}

export async function writeSetting(db: Kysely<Database>, key: string, value: unknown): Promise<void> {
  const json = JSON.stringify(value);
  const updated_at = nowIso();
  await db
    .insertInto('settings')
    .values({ key, value: json, updated_at })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: json, updated_at }))
    .execute();
}

/** Writes `value` under `key` unless a value is there already (a concurrent writer's stays). */
export async function writeSettingOnce(db: Kysely<Database>, key: string, value: unknown): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value: JSON.stringify(value), updated_at: nowIso() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
}
