import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingWindowLimiter, SlottedWindowLimiter } from './rate-limit.js';

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

describe('SlottedWindowLimiter (the API-wide limiter)', () => {
  afterEach(() => mock.timers.reset());
  const keysIn = (l: SlottedWindowLimiter) => (l as unknown as { logs: Map<string, unknown> }).logs.size;

  it('allows `limit` hits per window, then none, per key; a refused hit is not counted', () => {
    const c = clock(0);
    const l = new SlottedWindowLimiter(3, 60_000, c.now);
    assert.deepEqual(l.take('a'), { allowed: true, remaining: 2, resetSeconds: 60 });
    c.advance(10_000);
    assert.equal(l.take('a').remaining, 1);
    assert.equal(l.take('a').remaining, 0);
    assert.deepEqual(l.take('a'), { allowed: false, remaining: 0, resetSeconds: 51 });
    assert.equal(l.peek('a').remaining, 0);
    assert.equal(l.take('b').allowed, true, 'another key is unaffected');
  });

  it('a hit leaves at the end of its slot (a second) plus the window: never early', () => {
    const c = clock(0);
    const l = new SlottedWindowLimiter(1, 60_000, c.now);
    c.advance(400);
    l.take('ip'); // t=0.4 s, in the slot [0, 1 s)
    c.advance(59_600); // t=60 s: a true sliding window would let the next hit in already
    assert.equal(l.take('ip').allowed, false, 'still counted 60 s after it was made');
    c.advance(999); // t=60.999 s
    assert.deepEqual(l.take('ip'), { allowed: false, remaining: 0, resetSeconds: 1 });
    c.advance(1); // t=61 s: its slot's end plus the window
    assert.equal(l.take('ip').allowed, true);
  });

  it('no 60-second span ever holds more than `limit` hits, whatever their timing', () => {
    const c = clock(0);
    const l = new SlottedWindowLimiter(50, 60_000, c.now);
    const admitted: number[] = [];
    let state = 12345;
    for (let i = 0; i < 20_000; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31; // a fixed pseudo-random walk of the clock
      c.advance(state % 70);
      if (l.take('k').allowed) admitted.push(c.now());
    }
    let first = 0;
    for (let last = 0; last < admitted.length; last++) {
      while (admitted[last]! - admitted[first]! >= 60_000) first++;
      assert.ok(last - first + 1 <= 50, `${last - first + 1} hits within 60 s ending at ${admitted[last]}`);
    }
    assert.ok(admitted.length >= 500, `the limit is used, not starved (${admitted.length} admitted)`);
  });

  it('reports whole seconds until the oldest slot leaves, at least 1', () => {
    const c = clock(0);
    const l = new SlottedWindowLimiter(5, 60_000, c.now);
    assert.equal(l.peek('k').resetSeconds, 60, 'nothing counted: the window');
    l.take('k'); // slot [0, 1 s): leaves at 61 s
    c.advance(30_500);
    l.take('k'); // slot [30 s, 31 s)
    assert.equal(l.peek('k').resetSeconds, 31, 'the oldest decides: 61 − 30.5 = 30.5 → 31');
    c.advance(30_499);
    assert.equal(l.peek('k').resetSeconds, 1);
    c.advance(1); // t=61 s: the first has left
    assert.deepEqual(l.peek('k'), { remaining: 4, resetSeconds: 30 });
  });

  it('a long quiet spell empties the key; a clock that steps back counts in the newest slot', () => {
    const c = clock(1_000_000);
    const l = new SlottedWindowLimiter(2, 60_000, c.now);
    l.take('k');
    l.take('k');
    c.advance(10 * 60_000);
    assert.equal(l.peek('k').remaining, 2);
    assert.equal(keysIn(l), 0, 'a key with nothing live is forgotten');
    l.take('k');
    c.advance(-5_000);
    assert.deepEqual(l.take('k'), { allowed: true, remaining: 0, resetSeconds: 66 });
    assert.equal(l.take('k').allowed, false);
  });

  it('holds a fixed amount per key whatever the limit, and the sweep drops idle keys', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const c = clock(0);
    const l = new SlottedWindowLimiter(10_000_000, 60_000, c.now);
    l.start();
    for (let i = 0; i < 100_000; i++) {
      l.take('busy');
      c.advance(i % 2);
    }
    const log = (l as unknown as { logs: Map<string, { counts: Uint32Array; total: number }> }).logs.get('busy')!;
    assert.equal(log.counts.length, 61);
    assert.equal(log.total, 100_000);
    l.take('idle');
    c.advance(62_000);
    l.take('busy');
    mock.timers.tick(60_000);
    assert.equal(keysIn(l), 1, 'only the key with a live hit is kept');
    l.stop();
    assert.equal(keysIn(l), 0);
  });
});
