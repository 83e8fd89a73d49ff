import type { Context, Next } from 'koa';
import { errors } from './errors.js';

/**
 * Sliding-window counter per key (client IP): at most `limit` hits in `windowMs`.
 * Kept in memory: limits reset on restart, which is acceptable for a single-process cell.
 */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();
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

  /** Hits still inside the window, oldest first. */
  private live(key: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = this.hits.get(key);
    if (!list) return [];
    let drop = 0;
    while (drop < list.length && list[drop]! <= cutoff) drop++;
    if (drop > 0) list.splice(0, drop);
    if (list.length === 0) this.hits.delete(key);
    return list;
  }

  /** Remaining hits and seconds until the oldest one leaves the window. */
  peek(key: string): { remaining: number; resetSeconds: number } {
    const list = this.live(key);
    const oldest = list[0];
    const resetMs = oldest === undefined ? this.windowMs : oldest + this.windowMs - this.now();
    return { remaining: Math.max(0, this.limit - list.length), resetSeconds: Math.max(1, Math.ceil(resetMs / 1000)) };
  }

  record(key: string): void {
    const list = this.live(key);
    if (list.length === 0) this.hits.set(key, list);
    list.push(this.now());
  }

  reset(key: string): void {
    this.hits.delete(key);
  }

  private sweep(): void {
    for (const key of [...this.hits.keys()]) this.live(key);
  }
}

function setRateLimitHeaders(ctx: Context, limiter: SlidingWindowLimiter, state: { remaining: number; resetSeconds: number }): void {
  ctx.set('RateLimit-Limit', String(limiter.limit));
  ctx.set('RateLimit-Remaining', String(state.remaining));
  ctx.set('RateLimit-Reset', String(state.resetSeconds));
}

/** Every request counts against the limit (the API-wide limiter). */
export function rateLimitRequests(limiter: SlidingWindowLimiter) {
  return async function limitRequests(ctx: Context, next: Next): Promise<void> {
    const before = limiter.peek(ctx.ip);
    if (before.remaining === 0) {
      setRateLimitHeaders(ctx, limiter, before);
      throw errors.tooManyRequests(before.resetSeconds, 'too many requests; slow down');
    }
    limiter.record(ctx.ip);
    setRateLimitHeaders(ctx, limiter, { ...before, remaining: before.remaining - 1 });
    await next();
  };
}

/**
 * Only failures count (the login limiter): a request is refused once `limit` failures from this
 * client fall inside the window. The handler reports a failure by calling `ctx.state.countFailure()`.
 */
export function rateLimitFailures(limiter: SlidingWindowLimiter) {
  return async function limitFailures(ctx: Context, next: Next): Promise<void> {
    const before = limiter.peek(ctx.ip);
    setRateLimitHeaders(ctx, limiter, before);
    if (before.remaining === 0) {
      throw errors.tooManyRequests(before.resetSeconds, `too many failed attempts; try again in ${before.resetSeconds} s`);
    }
    ctx.state['countFailure'] = () => {
      limiter.record(ctx.ip);
      setRateLimitHeaders(ctx, limiter, limiter.peek(ctx.ip));
    };
    await next();
  };
}
