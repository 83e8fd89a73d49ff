import type Koa from 'koa';
import session from 'koa-session';
import type { Db } from '../db/database.js';
import { randomToken, sha256Hex } from '../lib/tokens.js';

export const SESSION_COOKIE = 'pic.sid';

/** What a session holds. Never a secret beyond the CSRF token, which is bound to this session. */
export interface SessionData {
  uid?: number;
  role?: 'admin' | 'peer';
  csrf?: string;
}

/**
 * Sessions live server-side in SQLite, keyed by the SHA-256 of the cookie's random id, so a copy
 * of the database does not hand out live sessions. Idle expiry moves with use; absolute expiry does not.
 */
export class SqliteSessionStore {
  constructor(
    private readonly db: Db,
    private readonly absoluteMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<SessionData | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .select(['data', 'expires_at', 'absolute_expires_at'])
      .where('id_hash', '=', sha256Hex(key))
      .executeTakeFirst();
    if (!row) return undefined;
    const nowIso = new Date(this.now()).toISOString();
    if (row.expires_at <= nowIso || row.absolute_expires_at <= nowIso) {
      await this.destroy(key);
      return undefined;
    }
    return JSON.parse(row.data) as SessionData;
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
      .onConflict((oc) => oc.column('id_hash').doUpdateSet({ data: JSON.stringify(data), user_id: data.uid ?? null, expires_at: expires }))
      .execute();
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
