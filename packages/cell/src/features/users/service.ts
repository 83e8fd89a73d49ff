import type { Kysely } from 'kysely';
import type { Database, User } from '../../db/schema.js';
import { nowIso } from '../../lib/tokens.js';
import { errors } from '../../http/errors.js';

/** Columns that may leave this module for display; the password hash is never among them. */
export const PUBLIC_USER_COLUMNS = [
  'id',
  'username',
  'role',
  'disabled',
  'must_change_password',
  'created_at',
  'updated_at',
] as const;
export type PublicUser = Pick<User, (typeof PUBLIC_USER_COLUMNS)[number]>;

export async function createUser(
  trx: Kysely<Database>,
  input: { username: string; role: 'admin' | 'peer'; passwordHash: string; mustChangePassword?: boolean },
): Promise<PublicUser> {
  const existing = await trx.selectFrom('users').select('id').where('username', '=', input.username).executeTakeFirst();
  if (existing) throw errors.conflict(`user "${input.username}" already exists`, { username: 'is taken' });
  const now = nowIso();
  return trx
    .insertInto('users')
    .values({
      username: input.username,
      role: input.role,
      password_hash: input.passwordHash,
      must_change_password: input.mustChangePassword ? 1 : 0,
      created_at: now,
      updated_at: now,
      password_changed_at: now,
    })
    .returning(PUBLIC_USER_COLUMNS)
    .executeTakeFirstOrThrow();
}

/** For login only: the one place that reads a password hash. */
export async function findCredentials(db: Kysely<Database>, username: string) {
  return db
    .selectFrom('users')
    .select(['id', 'username', 'role', 'disabled', 'password_hash', 'must_change_password'])
    .where('username', '=', username)
    .executeTakeFirst();
}

export async function findUserById(db: Kysely<Database>, id: number): Promise<PublicUser | undefined> {
  return db.selectFrom('users').select(PUBLIC_USER_COLUMNS).where('id', '=', id).executeTakeFirst();
}

export async function findUserByName(db: Kysely<Database>, username: string): Promise<PublicUser | undefined> {
  return db.selectFrom('users').select(PUBLIC_USER_COLUMNS).where('username', '=', username).executeTakeFirst();
}

export async function listUsers(
  db: Kysely<Database>,
  page: { limit: number; offset: number; role?: 'admin' | 'peer' },
): Promise<{ users: PublicUser[]; total: number }> {
  let base = db.selectFrom('users');
  if (page.role) base = base.where('role', '=', page.role);
  const [users, count] = await Promise.all([
    base.select(PUBLIC_USER_COLUMNS).orderBy('id').limit(page.limit).offset(page.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { users, total: Number(count.n) };
}

export async function setPasswordHash(
  trx: Kysely<Database>,
  userId: number,
  passwordHash: string,
  mustChange: boolean,
): Promise<void> {
  const now = nowIso();
  await trx
    .updateTable('users')
    .set({
      password_hash: passwordHash,
      must_change_password: mustChange ? 1 : 0,
      password_changed_at: now,
      updated_at: now,
    })
    .where('id', '=', userId)
    .execute();
}

export async function countAdmins(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('role', '=', 'admin')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Opens or closes a login (a peer's follows its peer being live). */
export async function setUserDisabled(trx: Kysely<Database>, userId: number, disabled: boolean): Promise<void> {
  await trx
    .updateTable('users')
    .set({ disabled: disabled ? 1 : 0, updated_at: nowIso() })
    .where('id', '=', userId)
    .execute();
}

export async function deleteUser(trx: Kysely<Database>, userId: number): Promise<void> {
  await trx.deleteFrom('users').where('id', '=', userId).execute();
}
