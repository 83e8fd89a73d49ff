import type { Context, Next } from 'koa';
import type SQLite from 'better-sqlite3';
import type { CellDatabase, Db } from '../db/database.js';
import { randomToken, sha256Hex } from '../lib/tokens.js';

export const SESSION_COOKIE = 'pic.sid';

/** What a session holds. Never a secret beyond the CSRF token, which is bound to this session. */
export interface SessionData {
  uid?: number;
  role?: 'admin' | 'peer';
  csrf?: string;
}

/**
 * The signed-in account as the database has it at this request: the guard decides from it whether
 * the session still counts (disabled, role changed, peer disabled or expired).
 */
export interface AccountRow {
  id: number;
  username: string;
  role: 'admin' | 'peer';
  disabled: 0 | 1;
  must_change_password: 0 | 1;
  /** The peer behind a peer login; null for an admin, or for a peer login without a peer row. */
  peer_enabled: 0 | 1 | null;
  peer_expires_at: string | null;
}

/** A session as read by its cookie: its data, its idle expiry, and its account (when it names one). */
export interface LoadedSession {
  data: SessionData;
  expiresAt: string;
  account: AccountRow | undefined;
}

// The peer join only runs for peer logins, and uses the peers_user_id index (migration 0006).
const ACCOUNT_COLUMNS = 'u.id, u.username, u.role, u.disabled, u.must_change_password, p.enabled, p.expires_at';
const PEER_JOIN = "LEFT JOIN peers p ON p.user_id = u.id AND u.role = 'peer'";

/** The account columns above, as a raw row (an array: no object with named keys built per row). */
type AccountColumns = [
  id: number | null,
  username: string,
  role: 'admin' | 'peer',
  disabled: 0 | 1,
  must_change_password: 0 | 1,
  peer_enabled: 0 | 1 | null,
  peer_expires_at: string | null,
];
type SessionRow = [data: string, expires_at: string, absolute_expires_at: string, ...account: AccountColumns];

function toAccount(r: readonly unknown[], at: number): AccountRow | undefined {
  const id = r[at] as number | null;
  if (id === null) return undefined;
  return {
    id,
    username: r[at + 1] as string,
    role: r[at + 2] as 'admin' | 'peer',
    disabled: r[at + 3] as 0 | 1,
    must_change_password: r[at + 4] as 0 | 1,
    peer_enabled: r[at + 5] as 0 | 1 | null,
    peer_expires_at: r[at + 6] as string | null,
  };
}

/** Stored data, without the `_expire`/`_maxAge` bookkeeping that rows written by koa-session carry. */
function parseData(json: string): SessionData {
  const data = JSON.parse(json) as Record<string, unknown>;
  if (json.includes('"_')) for (const k of Object.keys(data)) if (k.startsWith('_')) delete data[k];
  return data as SessionData;
}

/**
 * Sessions live server-side in SQLite, keyed by the SHA-256 of the cookie's random id, so a copy
 * of the database does not hand out live sessions. Idle expiry moves with use; absolute expiry does not.
 *
 * Every API request reads its session, so that read is one prepared statement (session, user and
 * peer joined) on the raw handle rather than through kysely, whose query building and queue cost
 * several times the query itself. Writes (sign-in, renewal, sign-out) stay on kysely.
 */
export class SqliteSessionStore {
  private readonly db: Db;
  private readonly sqlite: SQLite.Database;
  private readonly bySession: SQLite.Statement<[string], SessionRow>;
  private readonly byUser: SQLite.Statement<[number], AccountColumns>;

  constructor(
    database: Pick<CellDatabase, 'db' | 'sqlite'>,
    private readonly absoluteMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.db = database.db;
    this.sqlite = database.sqlite;
    this.bySession = this.sqlite
      .prepare(
        `SELECT s.data, s.expires_at, s.absolute_expires_at, ${ACCOUNT_COLUMNS}
         FROM sessions s LEFT JOIN users u ON u.id = s.user_id ${PEER_JOIN}
         WHERE s.id_hash = ?`,
      )
      .raw(true) as unknown as SQLite.Statement<[string], SessionRow>;
    this.byUser = this.sqlite
      .prepare(`SELECT ${ACCOUNT_COLUMNS} FROM users u ${PEER_JOIN} WHERE u.id = ?`)
      .raw(true) as unknown as SQLite.Statement<[number], AccountColumns>;
  }

  /**
   * kysely runs a transaction on this same connection across awaits: a read beside it would see its
   * uncommitted writes (say, a user re-enabled by a change that then rolls back). While one is
   * open, the read waits its turn in kysely's queue instead.
   */
  private async read<P, R>(stmt: SQLite.Statement<[P], R>, param: P): Promise<R | undefined> {
    if (!this.sqlite.inTransaction) return stmt.get(param);
    return this.db.connection().execute(async () => stmt.get(param));
  }

  /** The live session under this cookie id with its account, or undefined (an expired one is deleted). */
  async load(key: string): Promise<LoadedSession | undefined> {
    const row = await this.read(this.bySession, sha256Hex(key));
    if (!row) return undefined;
    const [data, expiresAt, absoluteExpiresAt] = row;
    const nowIso = new Date(this.now()).toISOString();
    if (expiresAt <= nowIso || absoluteExpiresAt <= nowIso) {
      await this.destroy(key);
      return undefined;
    }
    return { data: parseData(data), expiresAt, account: toAccount(row, 3) };
  }

  async get(key: string): Promise<SessionData | undefined> {
    return (await this.load(key))?.data;
  }

  /** The account of a user id, read now (for a session given another user during this request). */
  async account(userId: number): Promise<AccountRow | undefined> {
    const row = await this.read(this.byUser, userId);
    return row && toAccount(row, 0);
  }

  /** Writes the session; returns its new idle expiry (ISO). The absolute limit is fixed by the first write. */
  async set(key: string, data: SessionData & Record<string, unknown>, maxAgeMs: number): Promise<string> {
    const now = this.now();
    const expires = new Date(now + maxAgeMs).toISOString();
    const json = JSON.stringify(data);
    await this.db
      .insertInto('sessions')
      .values({
        id_hash: sha256Hex(key),
        user_id: data.uid ?? null,
        data: json,
        created_at: new Date(now).toISOString(),
        expires_at: expires,
        absolute_expires_at: new Date(now + this.absoluteMs).toISOString(),
      })
      .onConflict((oc) => oc.column('id_hash').doUpdateSet({ data: json, user_id: data.uid ?? null, expires_at: expires }))
      .execute();
    return expires;
  }

  async destroy(key: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', sha256Hex(key)).execute();
  }

  /** Ends every session of a user, except (optionally) the one given by its cookie key. */
  async destroyUserSessions(db: Db, userId: number, exceptKey?: string): Promise<void> {
    let q = db.deleteFrom('sessions').where('user_id', '=', userId);
    if (exceptKey) q = q.where('id_hash', '!=', sha256Hex(exceptKey));
    await q.execute();
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

/**
 * `ctx.session`: the data as own properties (what is stored is exactly its JSON), plus
 * `regenerate()` and `externalKey` on the prototype, which JSON leaves out.
 */
export class Session implements SessionData {
  declare uid?: number;
  declare role?: 'admin' | 'peer';
  declare csrf?: string;
  readonly #state: SessionState;

  constructor(state: SessionState, data: SessionData | undefined) {
    this.#state = state;
    if (data) Object.assign(this, data);
  }

  /** The cookie's id (undefined until a new session is first saved). */
  get externalKey(): string | undefined {
    return this.#state.key;
  }

  /** Saves the data now under a fresh id and destroys the old one: no session fixation at sign-in. */
  regenerate(): Promise<void> {
    return this.#state.regenerate();
  }
}

/** HttpOnly, SameSite=Strict; Secure whenever the request came over TLS (the cookies library's default). */
const COOKIE = { path: '/', httpOnly: true, sameSite: 'strict', overwrite: true, signed: false } as const;
const COOKIE_PATTERN = new RegExp(`(?:^|;) *${SESSION_COOKIE.replace('.', '\\.')}=([^;]*)`);
/** Rewrite a session once less than half its idle time is left, not on every request. */
const RENEW_FRACTION = 0.5;
const STATE = Symbol('pic.session');

/** One request's session: read from the cookie up front, written back at the end only when needed. */
class SessionState {
  key: string | undefined;
  /** undefined: never asked for; null: removed (sign-out, or the account changed under it). */
  session: Session | null | undefined;
  account: AccountRow | undefined;
  private saved: string | undefined;
  private expiresAt: string | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly store: SqliteSessionStore,
    private readonly idleMs: number,
  ) {}

  async load(key: string): Promise<void> {
    const loaded = await this.store.load(key);
    // An unknown or expired id is never adopted: a new session gets a fresh one (no fixation).
    if (!loaded) return;
    this.key = key;
    this.session = new Session(this, loaded.data);
    this.saved = JSON.stringify(this.session);
    this.expiresAt = loaded.expiresAt;
    this.account = loaded.account;
  }

  get(): Session | null {
    if (this.session === undefined) this.session = new Session(this, undefined);
    return this.session;
  }

  set(value: SessionData | null): void {
    this.session = value === null ? null : new Session(this, value);
  }

  accountOf(userId: number): Promise<AccountRow | undefined> {
    return this.store.account(userId);
  }

  async regenerate(): Promise<void> {
    if (!this.session) return;
    if (this.key) await this.store.destroy(this.key);
    this.key = undefined;
    this.account = undefined;
    await this.save(JSON.stringify(this.session));
  }

  async commit(): Promise<void> {
    const session = this.session;
    if (session === undefined) return;
    if (session === null) {
      if (this.key) await this.store.destroy(this.key);
      this.key = undefined;
      this.ctx.cookies.set(SESSION_COOKIE, '', { ...COOKIE, expires: new Date(0) });
      return;
    }
    const json = JSON.stringify(session);
    if (json !== this.saved) {
      if (this.saved === undefined && json === '{}') return; // new and empty: nothing to keep
      await this.save(json);
    } else if (this.expiresAt && Date.parse(this.expiresAt) - Date.now() < this.idleMs * RENEW_FRACTION) {
      await this.save(json);
    }
  }

  private async save(json: string): Promise<void> {
    this.key ??= randomToken(32);
    this.expiresAt = await this.store.set(this.key, this.session as Session & Record<string, unknown>, this.idleMs);
    this.saved = json;
    this.ctx.cookies.set(SESSION_COOKIE, this.key, { ...COOKIE, maxAge: this.idleMs });
  }
}

function sessionState(ctx: Context): SessionState | undefined {
  return (ctx as unknown as { [STATE]?: SessionState })[STATE];
}

function cookieKey(ctx: Context): string | undefined {
  const header = ctx.req.headers.cookie;
  if (!header) return undefined;
  let value = COOKIE_PATTERN.exec(header)?.[1];
  if (value && value[0] === '"') value = value.slice(1, -1);
  return value || undefined;
}

/**
 * The account named by this request's session, as read together with it (one query), or read now
 * when the session was given another user during this request.
 */
export async function sessionAccount(ctx: Context, userId: number): Promise<AccountRow | undefined> {
  const state = sessionState(ctx);
  if (!state) return undefined;
  if (state.account?.id === userId) return state.account;
  return state.accountOf(userId);
}

/**
 * Sessions over the SQLite store. Defines `ctx.session` on the app's context; a session is read
 * when the request carries the cookie, and written back only when its data changed, it was
 * removed, or half its idle time has passed (renewal).
 */
export function sessionMiddleware(app: { context: object }, store: SqliteSessionStore, idleMs: number) {
  if (!Object.prototype.hasOwnProperty.call(app.context, 'session')) {
    Object.defineProperty(app.context, 'session', {
      get(this: Context) {
        return sessionState(this)?.get() ?? null;
      },
      set(this: Context, value: SessionData | null) {
        sessionState(this)?.set(value);
      },
      configurable: true,
    });
  }
  return async function session(ctx: Context, next: Next): Promise<void> {
    const state = new SessionState(ctx, store, idleMs);
    (ctx as unknown as { [STATE]: SessionState })[STATE] = state;
    const key = cookieKey(ctx);
    if (key) await state.load(key);
    try {
      await next();
    } finally {
      await state.commit();
    }
  };
}
