import type { Kysely } from 'kysely';

// Frozen once landed: add a new migration instead of editing this one.
// One-step invites (features/cells): the invited cell delivers its response itself, to this
// cell's link listener; only an invite made for that may be completed there.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('cell_invites')
    .addColumn('one_step', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('cell_invites').dropColumn('one_step').execute();
}
