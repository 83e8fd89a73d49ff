import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StatusRegistry, overallState, type SubsystemStatus } from './service.js';

describe('StatusRegistry', () => {
  it('collects every provider, sync or async, by name', async () => {
    const r = new StatusRegistry();
    r.register('database', () => ({ state: 'ok', file: 'cell.db' }));
    r.register('wireguard', async () => ({ state: 'not_configured' }));
    assert.deepEqual(await r.collect(), {
      database: { state: 'ok', file: 'cell.db' },
      wireguard: { state: 'not_configured' },
    });
  });

  it('refuses a name registered twice', () => {
    const r = new StatusRegistry();
    r.register('x', () => ({ state: 'ok' }));
    assert.throws(() => r.register('x', () => ({ state: 'ok' })), /registered twice/);
  });

  it('a provider that throws (sync or async) shows as down with its message, the others still answer', async () => {
    const r = new StatusRegistry();
    r.register('sync-throw', () => {
      throw new Error('socket not found');
    });
    r.register('async-reject', async () => {
      throw new Error('engine refused');
    });
    r.register('throws-a-string', () => {
      throw 'not an Error';
    });
    r.register('fine', () => ({ state: 'ok' }));
    const all = await r.collect();
    assert.deepEqual(all['sync-throw'], { state: 'down', error: 'socket not found' });
    assert.deepEqual(all['async-reject'], { state: 'down', error: 'engine refused' });
    assert.deepEqual(all['throws-a-string'], { state: 'down', error: 'status check failed' });
    assert.deepEqual(all['fine'], { state: 'ok' });
    assert.equal(overallState(all), 'down');
  });

  it('a provider that hangs shows as down after the timeout, without holding up the summary', async () => {
    const r = new StatusRegistry();
    r.register('hangs', () => new Promise<SubsystemStatus>(() => undefined));
    r.register(
      'slow-but-in-time',
      () => new Promise<SubsystemStatus>((res) => setTimeout(() => res({ state: 'ok' }), 10)),
    );
    const started = performance.now();
    const all = await r.collect(150);
    const took = performance.now() - started;
    assert.deepEqual(all['hangs'], { state: 'down', error: 'status check timed out' });
    assert.deepEqual(all['slow-but-in-time'], { state: 'ok' });
    assert.ok(took >= 140 && took < 1000, `took ${took.toFixed(0)} ms`);
  });

  it('leaves no timer behind once every provider has answered', async () => {
    const r = new StatusRegistry();
    r.register('quick', () => ({ state: 'ok' }));
    const before = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    await r.collect(60_000);
    const afterCount = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    assert.equal(afterCount, before, 'the 60 s timeout was cleared');
  });
});

describe('overallState', () => {
  const s = (...states: SubsystemStatus['state'][]) =>
    Object.fromEntries(states.map((state, i) => [`s${i}`, { state }]));
  it('is the worst state among subsystems in use', () => {
    assert.equal(overallState({}), 'ok');
    assert.equal(overallState(s('ok', 'ok')), 'ok');
    assert.equal(overallState(s('ok', 'degraded')), 'degraded');
    assert.equal(overallState(s('degraded', 'down', 'ok')), 'down');
  });
  it('ignores subsystems that are not configured or not installed', () => {
    assert.equal(overallState(s('not_configured', 'not_installed')), 'ok');
    assert.equal(overallState(s('ok', 'not_installed')), 'ok');
    assert.equal(overallState(s('not_configured', 'degraded')), 'degraded');
  });
});

describe('StatusRegistry.summary', () => {
  it('reuses one round of checks within maxAge, and asks again after it', async () => {
    const r = new StatusRegistry();
    let calls = 0;
    r.register('counted', () => ({ state: 'ok', calls: ++calls }));
    const [a, b] = await Promise.all([r.summary(1000, 0), r.summary(1000, 10)]);
    assert.equal(calls, 1, 'concurrent callers share one round');
    assert.deepEqual(a, b);
    await r.summary(1000, 999);
    assert.equal(calls, 1);
    const later = await r.summary(1000, 1001);
    assert.equal(calls, 2);
    assert.equal(later['counted']!['calls'], 2);
  });
});
