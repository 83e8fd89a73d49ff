import type Koa from 'koa';
import session from 'koa-session';
import type { CellDatabase, Db } from '../db/database.js';
import type { WriteCounter } from '../db/write-counter.js';
import { randomToken, sha256Hex } from '../lib/tokens.js';

export const SESSION_COOKIE = 'pic.sid';

/** What a session holds. Never a secret beyond the CSRF token, which is bound to this session. */
export interface SessionData {
  uid?: number;
  role?: 'admin' | 'peer';
  csrf?: string;
}

/** The signed-in account behind a session, as the guard needs it on every request. */
export interface SessionAccount {
  id: number;
  username: string;
  role: 'admin' | 'peer';
  disabled: boolean;
  mustChangePassword: boolean;
  /** For a peer login: its peer is disabled, or (ms since epoch) when it expires; null when it never does. */
  peerDisabled: boolean;
  peerExpiresAtMs: number | null;
}

interface CachedSession {
  data: Readonly<SessionData>;
  expiresAtMs: number;
  absoluteExpiresAtMs: number;
}

/** Past this many entries a cache starts over: a home cell has a handful of live sessions. */
const CACHE_LIMIT = 10_000;

/**
 * Rows kept in memory for as long as no write went through kysely (see WriteCounter): any write
 * empties it, and a load that a write overlapped is not kept.
 */
class RowCache<K, V> {
  private readonly entries = new Map<K, V>();
  private seen = -1;

  constructor(private readonly writes: WriteCounter) {}

  get(key: K): V | undefined {
    return this.startOverIfWritten(this.writes.value) ? undefined : this.entries.get(key);
  }

  /** Loads through `load` and keeps the result, unless a write happened while it loaded. */
  async load(key: K, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const before = this.writes.value;
    const value = await load();
    if (value !== undefined && this.writes.value === before) {
      this.startOverIfWritten(before);
      if (this.entries.size >= CACHE_LIMIT) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }

  /** Empties the copies when the write count is not the one they were made at; true when it did. */
  private startOverIfWritten(count: number): boolean {
    if (this.seen === count) return false;
    this.entries.clear();
    this.seen = count;
    return true;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}

const isoMs = (iso: string): number => Date.parse(iso);

/**
 * Sessions live server-side in SQLite, keyed by the SHA-256 of the cookie's random id, so a copy
 * of the database does not hand out live sessions. Idle expiry moves with use; absolute expiry does not.
 *
 * Every API request reads its session and its account. Both are kept in memory between writes
 * (any write through kysely empties the copies, see WriteCounter), so a request that changes
 * nothing costs no query, while a disabled user or a logout still counts from the very next
 * request. Expiry is checked against the clock on every read.
 */
export class SqliteSessionStore {
  private readonly db: Db;
  private readonly sessions: RowCache<string, CachedSession>;
  private readonly accounts: RowCache<number, SessionAccount>;

  constructor(
    database: Pick<CellDatabase, 'db' | 'writes'>,
    private readonly absoluteMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.db = database.db;
    // keyed by the cookie's id itself: it never leaves this process's memory
    this.sessions = new RowCache(database.writes);
    this.accounts = new RowCache(database.writes);
  }

  async get(key: string): Promise<SessionData | undefined> {
    const session = this.sessions.get(key) ?? (await this.sessions.load(key, () => this.loadSession(key)));
    if (!session) return undefined;
    const now = this.now();
    if (session.expiresAtMs <= now || session.absoluteExpiresAtMs <= now) {
      await this.destroy(key);
      return undefined;
    }
    return session.data;
  }

  private async loadSession(key: string): Promise<CachedSession | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .select(['data', 'expires_at', 'absolute_expires_at'])
      .where('id_hash', '=', sha256Hex(key))
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      data: Object.freeze(JSON.parse(row.data) as SessionData),
      expiresAtMs: isoMs(row.expires_at),
      absoluteExpiresAtMs: isoMs(row.absolute_expires_at),
    };
  }

  /** The account, when memory holds an up-to-date copy; undefined means "ask account()". */
  accountInMemory(userId: number): SessionAccount | undefined {
    return this.accounts.get(userId);
  }

  /** The account a session names (with its peer, for a peer login), or undefined when it is gone. */
  async account(userId: number): Promise<SessionAccount | undefined> {
    return this.accounts.get(userId) ?? this.accounts.load(userId, () => this.loadAccount(userId));
  }

  private async loadAccount(userId: number): Promise<SessionAccount | undefined> {
    const row = await this.db
      .selectFrom('users')
      .leftJoin('peers', 'peers.user_id', 'users.id')
      .select([
        'users.id',
        'users.username',
        'users.role',
        'users.disabled',
        'users.must_change_password',
        'peers.enabled as peer_enabled',
        'peers.expires_at as peer_expires_at',
      ])
      .where('users.id', '=', userId)
      .executeTakeFirst();
    if (!row) return undefined;
    return Object.freeze({
      id: row.id,
      username: row.username,
      role: row.role,
      disabled: row.disabled === 1,
      mustChangePassword: row.must_change_password === 1,
      peerDisabled: row.peer_enabled === 0,
      peerExpiresAtMs: row.peer_expires_at == null ? null : isoMs(row.peer_expires_at),
    });
  }

  async set(key: string, data: SessionData & Record<string, unknown>, maxAgeMs: number): Promise<void> {
    const now = this.now();
    const expires = new Date(now + maxAgeMs).toISOString();
    await this.db
      .insertInto('sessions')
      .values({
        id_hash: sha256Hex(key),
        user_id: data.uid ?? null,
        data: JSON.stringify(data),
        created_at: new Date(now).toISOString(),
        expires_at: expires,
        absolute_expires_at: new Date(now + this.absoluteMs).toISOString(),
      })
      // the absolute limit is fixed when the session is first written
      .onConflict((oc) =>
        oc
          .column('id_hash')
          .doUpdateSet({ data: JSON.stringify(data), user_id: data.uid ?? null, expires_at: expires }),
      )
      .execute();
  }

  async destroy(key: string): Promise<void> {
    this.sessions.delete(key);
    await this.db.deleteFrom('sessions').where('id_hash', '=', sha256Hex(key)).execute();
  }

  /** Ends every session of a user, except (optionally) the one given by its cookie key. */
  destroyUserSessions(db: Db, userId: number, exceptKey?: string): Promise<void> {
    return deleteUserSessions(db, userId, exceptKey);
  }

  async purgeExpired(): Promise<number> {
    const nowIso = new Date(this.now()).toISOString();
    const res = await this.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', nowIso), eb('absolute_expires_at', '<=', nowIso)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

/** koa-session over the SQLite store: HttpOnly, SameSite=Strict, Secure whenever the request came over TLS. */
export function sessionMiddleware(app: Koa, store: SqliteSessionStore, idleMs: number) {
  return session(
    {
      key: SESSION_COOKIE,
      store,
      maxAge: idleMs,
      // renew (rewrite) the session once half the idle time has passed, instead of on every request
      renew: true,
      rolling: false,
      httpOnly: true,
      sameSite: 'strict',
      signed: false, // the id is 256 random bits and only its hash is stored; a signature adds nothing
      genid: () => randomToken(32),
    },
    app,
  );
}

/** The store's `destroyUserSessions`, for callers that hold no store (a peer disabled or expired). */
export async function deleteUserSessions(db: Db, userId: number, exceptKey?: string): Promise<void> {
  let q = db.deleteFrom('sessions').where('user_id', '=', userId);
  if (exceptKey) q = q.where('id_hash', '!=', sha256Hex(exceptKey));
  await q.execute();
}
