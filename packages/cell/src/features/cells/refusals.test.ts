import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RefusalAuditLimiter, type RefusalSummary } from './refusals.js';

describe('refusal audit limiter', () => {
  it('admits the first N a window per source, counts the rest, and sums them up once at the end', async () => {
    const summaries: RefusalSummary[] = [];
    const limiter = new RefusalAuditLimiter(async (s) => void summaries.push(s), 3, 150);
    const admitted = Array.from({ length: 10 }, (_, i) =>
      limiter.admit('10.81.0.9', i % 2 ? 'bad_mac' : 'replayed', 'alpha'),
    );
    assert.deepEqual(admitted, [true, true, true, false, false, false, false, false, false, false]);
    // another source has a window of its own
    assert.equal(limiter.admit('10.81.0.10', 'bad_mac', null), true);
    assert.equal(summaries.length, 0, 'no summary before the window ends');
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(summaries.length, 1, JSON.stringify(summaries));
    assert.equal(summaries[0]!.source, '10.81.0.9');
    assert.equal(summaries[0]!.count, 7);
    assert.deepEqual(summaries[0]!.errors, { bad_mac: 4, replayed: 3 });
    assert.equal(summaries[0]!.link, 'alpha');
    // a new window: audited again
    assert.equal(limiter.admit('10.81.0.9', 'bad_mac', 'alpha'), true);
    await limiter.flush();
  });

  it('writes what it counted when the cell stops', async () => {
    const summaries: RefusalSummary[] = [];
    const limiter = new RefusalAuditLimiter(async (s) => void summaries.push(s), 1, 60_000);
    limiter.admit('10.81.0.9', 'bad_mac', null);
    limiter.admit('10.81.0.9', 'bad_mac', null);
    await limiter.flush();
    assert.equal(summaries.length, 1);
    assert.equal(summaries[0]!.count, 1);
  });
});
