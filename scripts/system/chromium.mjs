// Provider: Debian's chromium, the real browser the console's end-to-end tests drive with
// playwright-core (a test tool's own browser download does not work on machines without internet).
// It only installs; the browser tests still check for /usr/bin/chromium themselves and skip loudly.
import { existsSync } from 'node:fs';
import { aptInstall } from './apt.mjs';

export const name = 'chromium';
export const CHROMIUM = '/usr/bin/chromium';

export async function ensure(log) {
  if (process.env.PIC_TEST_CHROMIUM)
    return { ok: existsSync(process.env.PIC_TEST_CHROMIUM), reason: `${process.env.PIC_TEST_CHROMIUM} is missing` };
  if (!existsSync(CHROMIUM)) {
    const failed = aptInstall(['chromium'], log);
    if (failed) return { ok: false, reason: failed };
  }
  if (!existsSync(CHROMIUM)) return { ok: false, reason: `${CHROMIUM} is still missing after installing chromium` };
  return { ok: true };
}
