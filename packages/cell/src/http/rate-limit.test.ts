import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingWindowLimiter } from './rate-limit.js';

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** How many keys the limiter still holds in memory (what the sweep is for). */
const keysHeld = (l: SlidingWindowLimiter) => (l as unknown as { hits: Map<string, number[]> }).hits.size;

describe('SlidingWindowLimiter', () => {
  afterEach(() => mock.timers.reset());

  it('allows `limit` hits per window, then none, per key', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(3, 10_000, c.now);
    assert.equal(l.peek('a').remaining, 3);
    for (let i = 0; i < 3; i++) {
      l.record('a');
      c.advance(100);
    }
    assert.equal(l.peek('a').remaining, 0);
    assert.equal(l.peek('b').remaining, 3, 'another key is unaffected');
    l.record('a'); // recording past the limit does not make remaining negative
    assert.equal(l.peek('a').remaining, 0);
  });

  it('slides: each hit leaves the window exactly windowMs after it was made', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(2, 1000, c.now);
    l.record('ip'); // t=0
    c.advance(400);
    l.record('ip'); // t=400
    assert.equal(l.peek('ip').remaining, 0);
    c.advance(599); // t=999: the first hit is still inside
    assert.equal(l.peek('ip').remaining, 0);
    c.advance(1); // t=1000: the first hit leaves
    assert.equal(l.peek('ip').remaining, 1);
    c.advance(399); // t=1399
    assert.equal(l.peek('ip').remaining, 1);
    c.advance(1); // t=1400: the second leaves too
    assert.equal(l.peek('ip').remaining, 2);
  });

  it('reports whole seconds until the oldest hit leaves (at least 1), or the window when empty', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(2, 60_000, c.now);
    assert.equal(l.peek('k').resetSeconds, 60);
    l.record('k'); // t=0
    c.advance(30_000);
    l.record('k'); // t=30s
    assert.equal(l.peek('k').resetSeconds, 30, 'the oldest hit decides');
    c.advance(14_500);
    assert.equal(l.peek('k').resetSeconds, 16, 'rounded up: 15.5 s → 16');
    c.advance(15_499);
    assert.equal(l.peek('k').resetSeconds, 1, '1 ms left still says 1 s');
    c.advance(1);
    assert.equal(l.peek('k').resetSeconds, 30, 'now the second hit is the oldest');
  });

  it('reset forgets a key', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(1, 1000, c.now);
    l.record('x');
    assert.equal(l.peek('x').remaining, 0);
    l.reset('x');
    assert.equal(l.peek('x').remaining, 1);
  });

  it('the sweep started by start() drops keys whose hits have all expired', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const c = clock();
    const l = new SlidingWindowLimiter(5, 1000, c.now);
    l.start();
    l.record('old-1');
    l.record('old-2');
    c.advance(500);
    l.record('recent');
    assert.equal(keysHeld(l), 3);
    c.advance(600); // t=1100: old-* expired, recent (t=500) is live
    mock.timers.tick(1000); // the sweep runs every min(windowMs, 60 s)
    assert.equal(keysHeld(l), 1, 'only the key with a live hit is kept');
    assert.equal(l.peek('recent').remaining, 4);
    c.advance(1000);
    mock.timers.tick(1000);
    assert.equal(keysHeld(l), 0);
    l.stop();
  });

  it('stop() ends the sweep and clears the counts', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const c = clock();
    const l = new SlidingWindowLimiter(1, 1000, c.now);
    l.start();
    l.record('a');
    l.stop();
    assert.equal(l.peek('a').remaining, 1);
    l.record('b');
    c.advance(5000);
    mock.timers.tick(5000);
    assert.equal(keysHeld(l), 1, 'no sweep runs after stop()');
  });

  it('take() answers as peek() then record() would, in one pass', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(2, 10_000, c.now);
    assert.deepEqual(l.take('k'), { allowed: true, remaining: 1, resetSeconds: 10 });
    c.advance(4_000);
    assert.deepEqual(l.take('k'), { allowed: true, remaining: 0, resetSeconds: 6 }, 'the oldest hit decides the reset');
    assert.deepEqual(l.take('k'), { allowed: false, remaining: 0, resetSeconds: 6 });
    assert.equal(l.peek('k').remaining, 0, 'a refused take() records nothing');
    c.advance(6_000);
    assert.deepEqual(
      l.take('k'),
      { allowed: true, remaining: 0, resetSeconds: 4 },
      'the first hit left; the second is the oldest now',
    );
  });

  it('reserve() counts a hit at once (simultaneous attempts see it) and release() gives it back once', () => {
    const c = clock();
    const l = new SlidingWindowLimiter(2, 10_000, c.now);
    const a = l.reserve('k');
    c.advance(10);
    const b = l.reserve('k');
    assert.deepEqual([a.allowed, b.allowed], [true, true]);
    assert.equal(l.reserve('k').allowed, false, 'two attempts in flight use the whole limit');
    a.release();
    a.release(); // a second release of the same attempt gives nothing more back
    assert.equal(l.peek('k').remaining, 1);
    const refused = l.reserve('x');
    refused.release();
    b.release();
    assert.equal(keysHeld(l), 0, 'a key with nothing left is forgotten');
    const late = l.reserve('k');
    c.advance(10_000); // the hit has left the window: releasing it must not remove a newer one
    const newer = l.reserve('k');
    late.release();
    assert.equal(l.peek('k').remaining, 1, 'the newer hit still counts');
    newer.release();
    assert.equal(l.peek('k').remaining, 2);
  });

  it('release() finds its own hit even when the clock moved between reserve() and a later call', () => {
    let now = 5_000;
    // a clock that moves on every read, as Date.now() may between two calls
    const l = new SlidingWindowLimiter(3, 10_000, () => now++);
    const first = l.reserve('k');
    const second = l.reserve('k');
    first.release();
    second.release();
    assert.equal(l.peek('k').remaining, 3, 'both hits were given back');
  });
});
