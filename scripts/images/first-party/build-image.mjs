#!/usr/bin/env node
// Builds (or finds built) one first-party image in the engine DOCKER_HOST names, and prints one JSON
// line: {"service":"calendar","image":"pic/calendar:<hash>","id":"sha256:..."}. Progress goes to stderr.
// Usage: node scripts/images/first-party/build-image.mjs <email|calendar|files|service dir>
import { buildFirstPartyImage, SERVICES } from './build.mjs';

const [service, ...extra] = process.argv.slice(2);
if (!service || extra.length) {
  process.stderr.write(`usage: build-image.mjs <${SERVICES.join('|')}|service dir>\n`);
  process.exit(2);
}
try {
  const built = await buildFirstPartyImage(service, { log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify(built)}\n`);
} catch (err) {
  process.stderr.write(`build-image: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
