#!/usr/bin/env node
// Installs the system packages the tests use, where this machine lets us (root + apt), before `npm test`.
// Each file in scripts/system/*.mjs exports `name` and `async ensure(log)`; it installs what it can and
// returns { ok, reason }. A test that needs a part still checks for it itself and skips loudly,
// naming the reason, when it is absent — this script only makes that rare.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'system');
const log = (msg) => process.stderr.write(`[pic:system] ${msg}\n`);

for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.mjs'))
  .sort()) {
  const mod = await import(pathToFileURL(join(dir, file)).href);
  try {
    const res = await mod.ensure(log);
    log(`${mod.name}: ${res.ok ? 'ready' : `NOT AVAILABLE — ${res.reason}`}`);
  } catch (err) {
    log(`${mod.name}: NOT AVAILABLE — ${err instanceof Error ? err.message : String(err)}`);
  }
}
