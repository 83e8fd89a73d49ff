// A real browser for the console's end-to-end tests: Debian's chromium (scripts/system/chromium.mjs
// installs it on `npm test`) driven by playwright-core. A test that needs it and finds no browser
// skips loudly with the reason.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env['PIC_TEST_CHROMIUM'] ?? '/usr/bin/chromium';
export type { Browser, BrowserContext, Page };

export async function launchBrowser(): Promise<Browser | { skip: string }> {
  if (!existsSync(CHROMIUM)) {
    return { skip: `no browser at ${CHROMIUM} (scripts/system/chromium.mjs installs Debian's chromium on npm test)` };
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
      timeout: 60_000,
    });
  } catch (err) {
    return {
      skip: `chromium at ${CHROMIUM} did not start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    };
  }
}

export interface WatchedPage {
  page: Page;
  /** Uncaught errors, console errors and CSP violations the page reported so far. */
  problems: string[];
  /** alert()/confirm()/prompt() dialogs the page opened (an injected script would). */
  dialogs: string[];
}

/**
 * A page that records what must never happen: script errors, CSP violations (from the
 * `securitypolicyviolation` event, recorded by a script the browser itself injects) and dialogs.
 */
export async function watchedPage(context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  const dialogs: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.exposeFunction('__picCsp', (s: string) => problems.push(`csp: ${s}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __picCsp(s: string): void }).__picCsp(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  return { page, problems, dialogs };
}
