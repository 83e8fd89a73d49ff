// Bench section for issue 3: audit appends/s (helper alone and through HTTP) and verify time at 100k / 1M entries,
// against the same stored entries hashed with SHA-256 alone in the same run (issue 9: a ratio, not an absolute time).
import { hash as oneShotHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = (root, p) => pathToFileURL(join(root, 'packages/cell/dist', p)).href;

async function openTempAudit(root) {
  const { openDatabase } = await import(dist(root, 'db/database.js'));
  const { AuditLog } = await import(dist(root, 'features/audit/service.js'));
  const dir = mkdtempSync(join(tmpdir(), 'pic-bench-audit-'));
  const database = openDatabase(join(dir, 'cell.db'));
  await database.migrate();
  const log = new AuditLog(database.db, database.sqlite);
  return {
    database,
    log,
    async close() {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const entry = (i) => ({
  actor: 'admin',
  action: 'config.update',
  targetType: 'config',
  targetId: 'cell',
  result: 'ok',
  ip: '127.0.0.1',
  details: { changed: ['identity.domain'], n: i },
});

/** Each append is its own committed transaction, as a real audited write is. */
export async function benchHelperAppends(root, count = 20_000) {
  const t = await openTempAudit(root);
  try {
    const { db } = t.database;
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      await db.transaction().execute(async (trx) => {
        t.log.appendIn(trx, entry(i));
      });
    }
    const inTrx = count / ((performance.now() - started) / 1000);
    const started2 = performance.now();
    for (let i = 0; i < count; i++) await t.log.append(entry(i));
    const alone = count / ((performance.now() - started2) / 1000);
    const check = await t.log.verify();
    if (!check.valid || check.entries !== 2 * count) throw new Error(`bench chain invalid: ${JSON.stringify(check)}`);
    return { in_transaction_per_s: Math.round(inTrx), standalone_per_s: Math.round(alone) };
  } finally {
    await t.close();
  }
}

/**
 * The floor verify is compared with: the same stored rows, read page by page with verify's own
 * query, each entry hashed with SHA-256 (prev_hash ‖ entry, as the chain hashes it) and nothing
 * else: no link, id or hash checks. Also the hashing alone on entries already in memory.
 */
function hashStoredEntries(sqlite, batchSize = 20_000) {
  const page = sqlite
    .prepare('SELECT id, entry, prev_hash, hash FROM audit_log WHERE id > ? ORDER BY id LIMIT ?')
    .raw(true);
  const started = performance.now();
  let last = 0;
  let n = 0;
  let sink = 0;
  for (;;) {
    const rows = page.all(last, batchSize);
    for (const row of rows) sink ^= oneShotHash('sha256', row[2] + row[1], 'hex').charCodeAt(0);
    n += rows.length;
    if (rows.length < batchSize) break;
    last = rows[rows.length - 1][0];
  }
  const readAndHashMs = performance.now() - started;
  const texts = sqlite.prepare('SELECT prev_hash || entry FROM audit_log ORDER BY id').pluck().all();
  const started2 = performance.now();
  for (const text of texts) sink ^= oneShotHash('sha256', text, 'hex').charCodeAt(0);
  const hashOnlyMs = performance.now() - started2;
  return { entries: n, readAndHashMs, hashOnlyMs, sink };
}

/**
 * Fills a chain of `total` entries (in large transactions, for speed), then alternates verify()
 * with hashing the same stored entries alone (`rounds` each, median reported).
 */
export async function benchVerify(root, totals = [100_000, 1_000_000], rounds = 3) {
  const out = {};
  for (const total of totals) {
    const t = await openTempAudit(root);
    try {
      const { db, sqlite } = t.database;
      const batch = 50_000;
      for (let done = 0; done < total; done += batch) {
        await db.connection().execute(async () => {
          sqlite.transaction(() => {
            for (let i = done; i < Math.min(total, done + batch); i++) t.log.appendIn(undefined, entry(i));
          })();
        });
      }
      const verifyMs = [];
      const floorMs = [];
      const hashOnlyMs = [];
      for (let r = 0; r < rounds; r++) {
        const started = performance.now();
        const res = await t.log.verify();
        verifyMs.push(performance.now() - started);
        if (!res.valid || res.entries !== total) throw new Error(`verify failed: ${JSON.stringify(res)}`);
        const floor = hashStoredEntries(sqlite);
        if (floor.entries !== total) throw new Error(`hashed ${floor.entries} entries, expected ${total}`);
        floorMs.push(floor.readAndHashMs);
        hashOnlyMs.push(floor.hashOnlyMs);
      }
      const ratios = verifyMs.map((v, i) => floorMs[i] / v);
      out[total] = {
        verify_ms: Math.round(median(verifyMs)),
        sha256_stored_ms: Math.round(median(floorMs)),
        sha256_in_memory_ms: Math.round(median(hashOnlyMs)),
        speed_ratio: Math.round(median(ratios) * 1000) / 1000,
        speed_ratio_spread: [Math.min(...ratios), Math.max(...ratios)].map((x) => Math.round(x * 1000) / 1000),
      };
    } finally {
      await t.close();
    }
  }
  return out;
}

/**
 * Audited writes through the real HTTP path: PUT /api/config (validate → transaction → audit entry)
 * from `connections` keep-alive clients for `seconds`. `api` is a signed-in client from the core bench.
 */
export async function benchHttpAppends({ baseUrl, cookie, csrf, seconds = 5, connections = 16 }) {
  const { Agent, request } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL('/api/config', baseUrl);
  const one = (i) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ identity: { cell_name: `bench${i % 1000}` } });
      const req = request(
        url,
        {
          method: 'PUT',
          agent,
          headers: {
            cookie,
            'x-csrf-token': csrf,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`PUT /api/config → ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await one(done++);
    }),
  );
  agent.destroy();
  return { audited_writes_per_s: Math.round(done / ((performance.now() - started) / 1000)), requests: done };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
