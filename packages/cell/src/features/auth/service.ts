import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { burnPasswordCheck, hashPassword, verifyPassword } from '../../lib/password.js';
import { generatePassword } from '../../lib/tokens.js';
import { errors } from '../../http/errors.js';
import type { SessionUser } from '../../http/context.js';
import { findCredentials, findUserById, findUserByName, setPasswordHash, type PublicUser } from '../users/service.js';
import type { ChangePasswordBody } from './schema.js';
import { isLive } from '../peers/service.js';
import { findPeerOfUser } from '../peers/queries.js';

/** Checks a username and password; undefined for any failure, so callers cannot tell which part was wrong. */
export async function authenticate(
  db: Kysely<Database>,
  username: string,
  password: string,
  source: string,
): Promise<PublicUser | undefined> {
  const creds = await findCredentials(db, username);
  if (!creds) {
    await burnPasswordCheck(password, source);
    return undefined;
  }
  const ok = await verifyPassword(password, creds.password_hash, source);
  if (!ok || creds.disabled === 1) return undefined;
  if (creds.role === 'peer' && !(await peerLoginOpen(db, creds.id))) return undefined;
  return findUserById(db, creds.id);
}

/** A peer's login is open only while its peer is enabled and not expired. */
async function peerLoginOpen(db: Kysely<Database>, userId: number): Promise<boolean> {
  const peer = await findPeerOfUser(db, userId);
  return peer ? isLive(peer) : true;
}

/** Verifies the current password (throws 400 naming it when wrong) and returns the new hash to store. */
export async function prepareNewPassword(
  db: Kysely<Database>,
  user: SessionUser,
  input: ChangePasswordBody,
  source: string,
): Promise<string> {
  const creds = await findCredentials(db, user.username);
  if (!creds || !(await verifyPassword(input.current_password, creds.password_hash, source))) {
    throw errors.validation({ current_password: 'is incorrect' }, 'current password is incorrect');
  }
  if (input.current_password === input.new_password) {
    throw errors.validation({ new_password: 'must differ from the current password' });
  }
  return hashPassword(input.new_password, source);
}

export async function storeNewPassword(trx: Kysely<Database>, userId: number, passwordHash: string): Promise<void> {
  await setPasswordHash(trx, userId, passwordHash, false);
}

/** Admin reset: a generated password, shown once, that the user must change. */
export async function resetPassword(
  trx: Kysely<Database>,
  admin: SessionUser,
  username: string,
): Promise<{ user: PublicUser; password: string }> {
  if (username === admin.username) {
    throw errors.badRequest('use /api/auth/change-password for your own account', { username: 'is your own account' });
  }
  const user = await findUserByName(trx, username);
  if (!user) throw errors.notFound(`no user "${username}"`);
  const password = generatePassword();
  await setPasswordHash(trx, user.id, await hashPassword(password), true);
  return { user, password };
}
