import type { Context, Next } from 'koa';
import { errors } from './errors.js';

/** A key's hits, oldest first, from `head` on: dropping old hits moves `head` instead of shifting the array. */
interface HitLog {
  times: number[];
  head: number;
}

/**
 * What both limiters share: the limit, the window, the clock, and a sweep every min(window, 60 s)
 * (from start() to stop()) that drops the keys with nothing left in the window.
 */
abstract class SweptLimiter {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    protected readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(this.windowMs, 60_000));
    this.sweeper.unref();
  }

  /** Ends the sweep and forgets every count. */
  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.clear();
  }

  protected abstract sweep(): void;
  protected abstract clear(): void;
}

/**
 * Sliding-window counter per key (client IP): at most `limit` hits in `windowMs`.
 * Kept in memory: limits reset on restart, which is acceptable for a single-process cell.
 * Each check is amortised O(1): refused requests are not recorded, so a log never holds more
 * than `limit` live hits, and expired ones are skipped by index, compacted now and then.
 */
export class SlidingWindowLimiter extends SweptLimiter {
  private readonly hits = new Map<string, HitLog>();

  protected clear(): void {
    this.hits.clear();
  }

  /** The key's log with expired hits dropped; undefined when nothing is live. */
  private live(key: string, now = this.now()): HitLog | undefined {
    const log = this.hits.get(key);
    if (!log) return undefined;
    const cutoff = now - this.windowMs;
    while (log.head < log.times.length && log.times[log.head]! <= cutoff) log.head++;
    if (log.head === log.times.length) {
      this.hits.delete(key);
      return undefined;
    }
    if (log.head > 1024 && log.head * 2 > log.times.length) {
      log.times = log.times.slice(log.head);
      log.head = 0;
    }
    return log;
  }

  private resetSeconds(log: HitLog | undefined, now: number): number {
    const oldest = log?.times[log.head];
    const resetMs = oldest === undefined ? this.windowMs : oldest + this.windowMs - now;
    return Math.max(1, Math.ceil(resetMs / 1000));
  }

  /** Remaining hits and seconds until the oldest one leaves the window. */
  peek(key: string): { remaining: number; resetSeconds: number } {
    const now = this.now();
    const log = this.live(key, now);
    const count = log ? log.times.length - log.head : 0;
    return { remaining: Math.max(0, this.limit - count), resetSeconds: this.resetSeconds(log, now) };
  }

  record(key: string): void {
    const now = this.now();
    this.addHit(key, this.live(key, now), now);
  }

  private addHit(key: string, log: HitLog | undefined, now: number): void {
    if (log) log.times.push(now);
    else this.hits.set(key, { times: [now], head: 0 });
  }

  /**
   * peek() then record() when there is room, in one pass (the API-wide limiter runs it on every
   * request). `remaining` counts this hit; `resetSeconds` is as peek() saw it before.
   */
  take(key: string, now = this.now()): { allowed: boolean; remaining: number; resetSeconds: number } {
    const log = this.live(key, now);
    const count = log ? log.times.length - log.head : 0;
    const resetSeconds = this.resetSeconds(log, now);
    if (count >= this.limit) return { allowed: false, remaining: 0, resetSeconds };
    this.addHit(key, log, now);
    return { allowed: true, remaining: this.limit - count - 1, resetSeconds };
  }

  /**
   * take() that can be undone: a hit counted now, before the outcome is known, so that requests
   * in flight at the same time see each other. `release()` removes that hit again (at most once;
   * a no-op once the hit has left the window).
   */
  reserve(key: string): { allowed: boolean; remaining: number; resetSeconds: number; release(): void } {
    // the hit's own time, to find it again (the clock may have moved on by the time of release)
    const at = this.now();
    const state = this.take(key, at);
    if (!state.allowed) return { ...state, release: () => {} };
    let released = false;
    return {
      ...state,
      release: () => {
        if (released) return;
        released = true;
        const log = this.hits.get(key);
        if (!log) return;
        const i = log.times.lastIndexOf(at);
        if (i < log.head) return;
        log.times.splice(i, 1);
        if (log.head === log.times.length) this.hits.delete(key);
      },
    };
  }

  reset(key: string): void {
    this.hits.delete(key);
  }

  protected sweep(): void {
    for (const key of [...this.hits.keys()]) this.live(key);
  }
}

/** How many slots the API-wide limiter counts a window in (a second each for its minute). */
const SLOTS = 60;
/** The slots that can hold live hits: the current one and the SLOTS before it. */
const RING = SLOTS + 1;

/** A key's hits per slot: slot n is counted at `counts[n % RING]`. */
interface SlotLog {
  counts: Uint32Array;
  total: number;
  /** The newest slot the counts have been brought up to. */
  latest: number;
  /** The oldest slot that still holds hits (meaningful while total > 0). */
  oldest: number;
}

/**
 * The API-wide limiter: at most `limit` hits per key in any `windowMs`, like
 * SlidingWindowLimiter, but counted per slot (a sixtieth of the window) instead of per hit. Its
 * memory per key is fixed (61 counters) whatever the limit: with `api_per_minute` at its maximum
 * (10 000 000) a busy client would otherwise be a log of a million timestamps, copied as it grows,
 * which the garbage collector walks again and again. The price is precision on the safe side: a
 * hit leaves the window at the end of its slot plus `windowMs`, so between `windowMs` and one slot
 * more after it was made; never earlier, so no window ever holds more than `limit` hits.
 */
export class SlottedWindowLimiter extends SweptLimiter {
  private readonly logs = new Map<string, SlotLog>();
  private readonly slotMs = this.windowMs / SLOTS;

  protected clear(): void {
    this.logs.clear();
  }

  /** The key's counts with the slots that left the window emptied; undefined when nothing is live. */
  private live(key: string, slot: number): SlotLog | undefined {
    const log = this.logs.get(key);
    if (!log) return undefined;
    if (slot > log.latest) {
      // the ring positions of the slots from latest + 1 to `slot` held hits that have left now
      const last = Math.min(slot, log.latest + RING);
      for (let n = log.latest + 1; n <= last; n++) {
        log.total -= log.counts[n % RING]!;
        log.counts[n % RING] = 0;
      }
      log.latest = slot;
      if (log.total === 0) {
        this.logs.delete(key);
        return undefined;
      }
      if (log.oldest < slot - SLOTS) log.oldest = slot - SLOTS;
      while (log.counts[log.oldest % RING] === 0) log.oldest++;
    }
    return log;
  }

  /** Whole seconds (at least 1) until the oldest live hit leaves, or the window when there is none. */
  private resetSeconds(log: SlotLog | undefined, now: number): number {
    if (!log) return Math.max(1, Math.ceil(this.windowMs / 1000));
    const leavesAt = (log.oldest + 1) * this.slotMs + this.windowMs;
    return Math.max(1, Math.ceil((leavesAt - now) / 1000));
  }

  /** Remaining hits and seconds until the oldest one leaves the window. */
  peek(key: string): { remaining: number; resetSeconds: number } {
    const now = this.now();
    const log = this.live(key, Math.floor(now / this.slotMs));
    return { remaining: Math.max(0, this.limit - (log?.total ?? 0)), resetSeconds: this.resetSeconds(log, now) };
  }

  /**
   * Counts a hit when there is room. `remaining` counts this hit; `resetSeconds` is as it was
   * before it. A refused hit is not counted.
   */
  take(key: string, now = this.now()): { allowed: boolean; remaining: number; resetSeconds: number } {
    const slot = Math.floor(now / this.slotMs);
    let log = this.live(key, slot);
    const count = log?.total ?? 0;
    const resetSeconds = this.resetSeconds(log, now);
    if (count >= this.limit) return { allowed: false, remaining: 0, resetSeconds };
    if (!log) {
      log = { counts: new Uint32Array(RING), total: 0, latest: slot, oldest: slot };
      this.logs.set(key, log);
    }
    // a clock that stepped back counts into the newest slot seen
    log.counts[log.latest % RING]!++;
    log.total++;
    return { allowed: true, remaining: this.limit - count - 1, resetSeconds };
  }

  protected sweep(): void {
    const slot = Math.floor(this.now() / this.slotMs);
    for (const key of [...this.logs.keys()]) this.live(key, slot);
  }
}

function setRateLimitHeaders(
  ctx: Context,
  limiter: { readonly limit: number },
  state: { remaining: number; resetSeconds: number },
): void {
  // on Node's response itself, as app.ts's security headers (once the answer is sent, Koa's ctx.set would skip them)
  if (ctx.res.headersSent) return;
  const res = ctx.res;
  res.setHeader('RateLimit-Limit', headerCount(limiter.limit));
  res.setHeader('RateLimit-Remaining', headerCount(state.remaining));
  res.setHeader('RateLimit-Reset', headerCount(state.resetSeconds));
}

/**
 * A count as header text. Not String(n): V8 keeps each number it turns into a string that way in
 * a cache the garbage collector scans on every collection, and Remaining changes on every
 * request. Under load that cache left about 35 bytes per request for the old generation (1 with
 * toFixed) and made every young collection slower: the cell ran about 3 % slower for it.
 */
const headerCount = (n: number): string => n.toFixed(0);

/** Every request counts against the limit (the API-wide limiter). */
export function rateLimitRequests(limiter: SlottedWindowLimiter) {
  return function limitRequests(ctx: Context, next: Next): Promise<void> {
    const state = limiter.take(ctx.request.ip);
    setRateLimitHeaders(ctx, limiter, state);
    if (!state.allowed) throw errors.tooManyRequests(state.resetSeconds, 'too many requests; slow down');
    return next();
  };
}

/**
 * Only failures count (the login limiter): a request is refused once `limit` failures from this
 * client fall inside the window. Each attempt is counted as a failure before the password is
 * checked (reserved), so that a burst of simultaneous guesses sees its own attempts in flight:
 * at most `limit` of them are ever evaluated. The handler confirms a failure by calling
 * `ctx.state.countFailure()`; any other outcome (success, a refused body, a busy hash queue)
 * gives the reserved attempt back when the request ends.
 */
declare module 'koa' {
  interface DefaultContext {
    /** Makes this attempt count against the failure limit; set by `rateLimitFailures` (like `trx` by `transactional`). */
    countFailure: () => void;
  }
}

export function rateLimitFailures(limiter: SlidingWindowLimiter) {
  return async function limitFailures(ctx: Context, next: Next): Promise<void> {
    const attempt = limiter.reserve(ctx.ip);
    setRateLimitHeaders(ctx, limiter, attempt);
    if (!attempt.allowed) {
      const seconds = attempt.resetSeconds;
      throw errors.tooManyRequests(seconds, `too many failed attempts; try again in ${seconds} s`);
    }
    let failed = false;
    ctx.countFailure = () => {
      failed = true;
    };
    try {
      await next();
    } finally {
      if (!failed) {
        attempt.release();
        setRateLimitHeaders(ctx, limiter, limiter.peek(ctx.ip));
      }
    }
  };
}
