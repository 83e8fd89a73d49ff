import type { PublicUser } from './service.js';

/** What the API shows of a user. */
export function presentUser(user: PublicUser) {
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    disabled: user.disabled === 1,
    must_change_password: user.must_change_password === 1,
    created_at: user.created_at,
  };
}
