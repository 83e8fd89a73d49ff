import type { Context, Next } from 'koa';
import { errors } from './errors.js';

/** A key's hits, oldest first, from `head` on: dropping old hits moves `head` instead of shifting the array. */
interface HitLog {
  times: number[];
  head: number;
}

/**
 * Sliding-window counter per key (client IP): at most `limit` hits in `windowMs`.
 * Kept in memory: limits reset on restart, which is acceptable for a single-process cell.
 * Each check is amortised O(1): refused requests are not recorded, so a log never holds more
 * than `limit` live hits, and expired ones are skipped by index, compacted now and then.
 */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, HitLog>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(this.windowMs, 60_000));
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
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

  private sweep(): void {
    for (const key of [...this.hits.keys()]) this.live(key);
  }
}

function setRateLimitHeaders(
  ctx: Context,
  limiter: SlidingWindowLimiter,
  state: { remaining: number; resetSeconds: number },
): void {
  // on Node's response itself, as app.ts's security headers (once the answer is sent, Koa's ctx.set would skip them)
  if (ctx.headerSent) return;
  const res = ctx.res;
  res.setHeader('RateLimit-Limit', String(limiter.limit));
  res.setHeader('RateLimit-Remaining', String(state.remaining));
  res.setHeader('RateLimit-Reset', String(state.resetSeconds));
}

/** Every request counts against the limit (the API-wide limiter). */
export function rateLimitRequests(limiter: SlidingWindowLimiter) {
  return function limitRequests(ctx: Context, next: Next): Promise<void> {
    const state = limiter.take(ctx.ip);
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
