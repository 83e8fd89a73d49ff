import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue } from './fair-queue.js';

/** A task the test finishes by hand, recording when it started. */
function gate(log: string[], name: string) {
  let open!: () => void;
  const done = new Promise<void>((resolve) => (open = resolve));
  return {
    task: () => {
      log.push(name);
      return done;
    },
    open: () => open(),
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('FairQueue', () => {
  it('runs at most `concurrency` tasks at once and starts the next one as one ends', async () => {
    const q = new FairQueue(2, 10, 10, () => new Error('full'));
    const started: string[] = [];
    const gates = ['a', 'b', 'c', 'd'].map((n) => gate(started, n));
    const results = gates.map((g) => q.run('k', g.task));
    await tick();
    assert.deepEqual(started, ['a', 'b']);
    assert.deepEqual(q.load, { running: 2, waiting: 2 });
    gates[0]!.open();
    await tick();
    assert.deepEqual(started, ['a', 'b', 'c']);
    for (const g of gates) g.open();
    await Promise.all(results);
    assert.deepEqual(started, ['a', 'b', 'c', 'd']);
    assert.deepEqual(q.load, { running: 0, waiting: 0 });
  });

  it('serves waiting keys round-robin: a burst from one key does not starve another', async () => {
    const q = new FairQueue(1, 100, 100, () => new Error('full'));
    const started: string[] = [];
    const first = gate(started, 'x0');
    const all = [q.run('x', first.task)];
    const burst = Array.from({ length: 5 }, (_, i) => gate(started, `x${i + 1}`));
    for (const g of burst) all.push(q.run('x', g.task));
    const other = gate(started, 'y0');
    all.push(q.run('y', other.task)); // arrives after the whole burst of x
    for (const g of [first, ...burst, other]) g.open();
    await Promise.all(all);
    // y waits for the task running and at most one more of x, not for the whole burst
    assert.deepEqual(started.slice(0, 3), ['x0', 'x1', 'y0']);
  });

  it('refuses at once past the per-key and the total bound, and the refusal holds no slot', async () => {
    const q = new FairQueue(1, 2, 3, () => new Error('full'));
    const started: string[] = [];
    const run = gate(started, 'run');
    const held = [q.run('a', run.task), q.run('a', async () => {}), q.run('a', async () => {})];
    await assert.rejects(
      q.run('a', async () => {}),
      /full/,
      'per-key bound',
    );
    held.push(q.run('b', async () => {}));
    await assert.rejects(
      q.run('c', async () => {}),
      /full/,
      'total bound',
    );
    assert.deepEqual(q.load, { running: 1, waiting: 3 });
    run.open();
    await Promise.all(held);
    assert.deepEqual(q.load, { running: 0, waiting: 0 });
    await q.run('c', async () => {}); // room again
  });

  it('a task that throws or rejects frees its slot and the error reaches its caller', async () => {
    const q = new FairQueue(1, 5, 5, () => new Error('full'));
    await assert.rejects(
      q.run('k', () => {
        throw new Error('sync boom');
      }),
      /sync boom/,
    );
    await assert.rejects(
      q.run('k', async () => {
        throw new Error('async boom');
      }),
      /async boom/,
    );
    assert.equal(await q.run('k', async () => 42), 42);
    assert.deepEqual(q.load, { running: 0, waiting: 0 });
  });
});
