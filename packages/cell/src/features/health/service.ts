import { statfs } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import type SQLite from 'better-sqlite3';
import type { Database } from '../../db/schema.js';
import type { Logger } from '../../lib/logger.js';
import { nowIso } from '../../lib/tokens.js';
import { countSamples, insertSampleKeepingNewest, listSamples } from './queries.js';

export interface HealthSample {
  ts: string;
  status: 'ok' | 'degraded' | 'down';
  duration_ms: number;
  checks: Record<string, { ok: boolean; [detail: string]: unknown }>;
}

const probes = new WeakMap<SQLite.Database, SQLite.Statement>();

/** Is the database answering? A cheap read through the raw handle (used by GET /health too). */
export function probeDatabase(sqlite: SQLite.Database): { ok: boolean; error?: string } {
  try {
    let probe = probes.get(sqlite);
    if (!probe) {
      probe = sqlite.prepare('SELECT 1 FROM settings LIMIT 1');
      probes.set(sqlite, probe);
    }
    probe.get();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : 'database error' };
  }
}

/**
 * Samples the cell's health every `intervalMs` into `health_checks`, keeping the newest `keep`.
 * start()/stop() so tests control it.
 */
export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private last: HealthSample | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly sqlite: SQLite.Database,
    private readonly dataDir: string,
    private readonly opts: { intervalMs: number; keep: number },
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.sampleAndStore();
    this.timer = setInterval(() => {
      this.sampleAndStore().catch((err) => this.logger.warn('health sample failed', { error: String(err) }));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get latest(): HealthSample | undefined {
    return this.last;
  }

  async sample(): Promise<HealthSample> {
    const started = performance.now();
    const checks: HealthSample['checks'] = {};
    checks['database'] = probeDatabase(this.sqlite);
    try {
      const fs = await statfs(this.dataDir);
      const freeBytes = fs.bavail * fs.bsize;
      // below 1% or 200 MB free, the cell is about to fail writes
      checks['disk'] = { ok: freeBytes > 200 * 1024 * 1024 && fs.bavail / fs.blocks > 0.01, free_bytes: freeBytes };
    } catch (err) {
      checks['disk'] = { ok: false, error: (err as Error).message };
    }
    const mem = process.memoryUsage();
    checks['memory'] = { ok: true, rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed };
    const status = !checks['database'].ok ? 'down' : Object.values(checks).every((c) => c.ok) ? 'ok' : 'degraded';
    return { ts: nowIso(), status, duration_ms: Math.round((performance.now() - started) * 100) / 100, checks };
  }

  async sampleAndStore(): Promise<HealthSample> {
    const sample = await this.sample();
    this.last = sample;
    if (!sample.checks['database']?.ok) return sample;
    const stored = {
      ts: sample.ts,
      status: sample.status,
      duration_ms: sample.duration_ms,
      checks: JSON.stringify(sample.checks),
    };
    await this.db.transaction().execute((trx) => insertSampleKeepingNewest(trx, stored, this.opts.keep));
    return sample;
  }

  async history(limit: number, offset: number): Promise<{ samples: HealthSample[]; total: number }> {
    const [rows, total] = await Promise.all([listSamples(this.db, limit, offset), countSamples(this.db)]);
    return {
      samples: rows.map((r) => ({ ...r, checks: JSON.parse(r.checks) as HealthSample['checks'] })),
      total,
    };
  }
}
