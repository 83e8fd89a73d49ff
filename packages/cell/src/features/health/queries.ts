import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** What a stored sample shows: never the row id. */
const SAMPLE_COLUMNS = ['ts', 'status', 'duration_ms', 'checks'] as const;

export interface StoredSample {
  ts: string;
  status: 'ok' | 'degraded' | 'down';
  duration_ms: number;
  /** JSON of the sample's checks. */
  checks: string;
}

/** Stores one sample and drops all but the newest `keep`: one transaction. */
export async function insertSampleKeepingNewest(trx: Transaction<Database>, sample: StoredSample, keep: number) {
  await trx.insertInto('health_checks').values(sample).execute();
  const cutoff = await trx
    .selectFrom('health_checks')
    .select('id')
    .orderBy('id', 'desc')
    .offset(keep)
    .limit(1)
    .executeTakeFirst();
  if (cutoff) await trx.deleteFrom('health_checks').where('id', '<=', cutoff.id).execute();
}

/** The newest samples first, a page of them. */
export function listSamples(db: Executor, limit: number, offset: number) {
  return db
    .selectFrom('health_checks')
    .select(SAMPLE_COLUMNS)
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

export async function countSamples(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('health_checks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
