import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Booleans are 0/1 integers; times are ISO-8601 UTC text. */
export type Bool01 = 0 | 1;

export interface UsersTable {
  id: Generated<number>;
  username: string;
  role: 'admin' | 'peer';
  password_hash: string;
  must_change_password: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  disabled: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  created_at: string;
  updated_at: string;
  password_changed_at: string;
}

export interface SessionsTable {
  /** SHA-256 of the cookie's session id; the id itself is never stored. */
  id_hash: string;
  user_id: number | null;
  data: string;
  created_at: string;
  /** Idle expiry: moved forward as the session is used. */
  expires_at: string;
  /** Hard limit: the session ends then, however active. */
  absolute_expires_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface HealthChecksTable {
  id: Generated<number>;
  ts: string;
  status: 'ok' | 'degraded' | 'down';
  duration_ms: number;
  checks: string;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  settings: SettingsTable;
  health_checks: HealthChecksTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
