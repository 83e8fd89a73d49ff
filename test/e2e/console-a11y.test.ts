import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ADMIN, ApiClient, completeSetup } from '../support/client.js';
import { launchBrowser, watchedPage, type Browser, type BrowserContext, type Page } from '../support/browser.js';

// The console's accessibility rules on every screen, in a real browser against a real cell, on a
// 360×740 screen: every control has an accessible name (as Chromium's accessibility tree computes
// it, the one screen readers get), the Tab key alone reaches every control, each one shows its
// focus when it has it, and nothing is wider than the screen.
const browserOrSkip = await launchBrowser();
after(async () => {
  if (!('skip' in browserOrSkip)) await browserOrSkip.close();
});

/** Roles a user acts on: each must have a name. */
const CONTROLS = new Set([
  'button',
  'link',
  'textbox',
  'searchbox',
  'checkbox',
  'radio',
  'combobox',
  'listbox',
  'spinbutton',
  'slider',
  'switch',
  'menuitem',
  'tab',
]);
const PHONE = { width: 360, height: 740 };

interface AxNode {
  ignored: boolean;
  role?: { value: string };
  name?: { value: string };
  backendDOMNodeId?: number;
}

/** The controls with no accessible name, from Chromium's own accessibility tree. */
async function unnamedControls(context: BrowserContext, page: Page): Promise<string[]> {
  const cdp = await context.newCDPSession(page);
  try {
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: AxNode[] };
    const bad: string[] = [];
    for (const n of nodes) {
      const role = n.role?.value ?? '';
      if (n.ignored || !CONTROLS.has(role) || (n.name?.value ?? '').trim()) continue;
      const { node } = (await cdp.send('DOM.describeNode', { backendNodeId: n.backendDOMNodeId! })) as {
        node: { localName: string; attributes?: string[] };
      };
      bad.push(`${role} <${node.localName} ${(node.attributes ?? []).join(' ')}>`);
    }
    return bad;
  } finally {
    await cdp.detach();
  }
}

/**
 * Presses Tab until every control on the page has had the focus (or twice as many presses as there
 * are controls); returns the controls never reached and those that showed no focus ring.
 */
async function tabThrough(page: Page): Promise<{ unreached: string[]; invisible: string[]; count: number }> {
  const count = await page.evaluate(() => {
    const selector =
      'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), ' +
      'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
    const all = [...document.querySelectorAll<HTMLElement>(selector)].filter((el) => el.checkVisibility());
    for (const [i, el] of all.entries()) el.setAttribute('data-a11y', String(i));
    (document.activeElement as HTMLElement | null)?.blur();
    return all.length;
  });
  const reached = new Set<string>();
  const invisible: string[] = [];
  for (let i = 0; i < count * 2 + 4 && reached.size < count; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      const id = el?.getAttribute('data-a11y');
      if (!el || id === null || id === undefined) return undefined;
      const s = getComputedStyle(el);
      const ring = (s.outlineStyle !== 'none' && Number.parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
      return { id, ring, what: el.outerHTML.slice(0, 80) };
    });
    if (!focused) continue;
    if (!focused.ring && !reached.has(focused.id)) invisible.push(focused.what);
    reached.add(focused.id);
  }
  const unreached = await page.evaluate(
    (seen) =>
      [...document.querySelectorAll<HTMLElement>('[data-a11y]')]
        .filter((el) => !seen.includes(el.getAttribute('data-a11y')!))
        .map((el) => el.outerHTML.slice(0, 80)),
    [...reached],
  );
  return { unreached, invisible, count };
}

describe('accessibility of every console screen at 360 px (real cell process, real browser)', () => {
  if ('skip' in browserOrSkip) {
    it('needs a browser', { skip: `NO BROWSER, console e2e not run: ${browserOrSkip.skip}` }, () => {});
    return;
  }
  const browser: Browser = browserOrSkip;
  let cell: CellProcess;
  before(async () => {
    cell = await startCellProcess();
  });
  after(async () => {
    await cell?.destroy();
  });

  /** Opens `path`, waits for its heading and for the API to go quiet, then checks the four rules. */
  const check = async (context: BrowserContext, page: Page, path: string, prepare?: () => Promise<void>) => {
    await page.goto(cell.url + path);
    await page.locator('h1').first().waitFor();
    await page.waitForLoadState('networkidle');
    await prepare?.();
    assert.deepEqual(await unnamedControls(context, page), [], `${path}: every control has a name`);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `${path} is ${overflow}px wider than a 360px screen`);
    const tab = await tabThrough(page);
    assert.ok(tab.count > 0, `${path}: has controls`);
    assert.deepEqual(tab.unreached, [], `${path}: the keyboard reaches every control`);
    assert.deepEqual(tab.invisible, [], `${path}: every control shows its focus`);
  };

  it('the setup wizard, the login, every admin screen and the peer portal', async () => {
    // before setup: the wizard's first step
    let context = await browser.newContext({ viewport: PHONE });
    let w = await watchedPage(context);
    await check(context, w.page, '/setup');
    assert.deepEqual(w.problems, []);
    await context.close();

    // set up through the API, with something on every screen
    const admin = new ApiClient(cell.url);
    await completeSetup(admin);
    const peer = await admin.post('/api/peers', { name: 'alice', description: 'a phone', tags: ['family'] });
    assert.equal(peer.status, 201, peer.text);
    const key = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal((await admin.post('/api/vault/trust-keys', { name: 'store', public_key: key })).status, 201);

    context = await browser.newContext({ viewport: PHONE });
    w = await watchedPage(context);
    await check(context, w.page, '/login');
    await w.page.getByLabel('Username').fill(ADMIN.username);
    await w.page.getByLabel('Password').fill(ADMIN.password);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.waitForURL(`${cell.url}/dashboard`);
    for (const path of ['/dashboard', '/peers/alice', '/store', '/vault', '/audit', '/users', '/change-password'])
      await check(context, w.page, path);
    await check(context, w.page, '/peers', async () => {
      await w.page.getByRole('button', { name: 'Add a peer' }).click();
      await w.page.getByLabel('Select alice').check(); // the batch actions show
    });
    assert.deepEqual(w.problems, []);
    await context.close();

    // the peer's portal
    const login = peer.body.login as { username: string; password: string };
    const client = new ApiClient(cell.url);
    assert.equal((await client.login(login.username, login.password)).status, 200);
    context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    w = await watchedPage(context);
    await w.page.goto(`${cell.url}/login`);
    await w.page.getByLabel('Username').fill(login.username);
    await w.page.getByLabel('Password').fill(login.password);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.waitForURL(`${cell.url}/portal`);
    await check(context, w.page, '/portal');
    assert.deepEqual(w.problems, []);
    await context.close();
  });
});
