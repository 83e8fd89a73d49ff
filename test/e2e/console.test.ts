import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient } from '../support/client.js';
import { launchBrowser, watchedPage, type Browser, type Page } from '../support/browser.js';

// The web console in a real browser (Debian's chromium through playwright-core) against a real
// cell process: the whole wizard from an empty data dir, signing in and being sent back, a peer
// added and its QR code decoded from the page, the peer's own portal on a phone-sized screen with
// a forced password change, every admin screen at 360 px, and the security rules
// (CSP, text that users or catalogs control rendered as text, cross-origin forms refused).

// jsqr is CommonJS with an ES-style `default` in its typings: under NodeNext the callable sits one level down.
const jsQR = jsQRModule.default;
const XSS = '<img src=x onerror=alert(1)>';
const ADMIN = { username: 'root', password: 'a long and secret passphrase' };

const browserOrSkip = await launchBrowser();
after(async () => {
  if (!('skip' in browserOrSkip)) await browserOrSkip.close();
});

describe('the web console in a real browser (real cell process)', () => {
  if ('skip' in browserOrSkip) {
    it('needs a browser', { skip: `NO BROWSER, console e2e not run: ${browserOrSkip.skip}` }, () => {});
    return;
  }
  const browser: Browser = browserOrSkip;
  let cell: CellProcess;
  let admin: ApiClient;

  before(async () => {
    cell = await startCellProcess();
  });
  after(async () => {
    await cell?.destroy();
  });

  /** A signed-in admin page in a fresh browser context. */
  const adminPage = async (viewport = { width: 1200, height: 900 }) => {
    const context = await browser.newContext({ viewport });
    const w = await watchedPage(context);
    await w.page.goto(`${cell.url}/login`);
    await w.page.getByLabel('Username').fill(ADMIN.username);
    await w.page.getByLabel('Password').fill(ADMIN.password);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.waitForURL(`${cell.url}/dashboard`);
    return { ...w, context };
  };

  it('serves the console at / with its cache rules, a strict CSP, an SPA fallback for its screens only', async () => {
    const index = await fetch(`${cell.url}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in index.html');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, html);
    const js = await fetch(cell.url + asset, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.equal(js.headers.get('content-encoding'), 'gzip');
    const plain = await fetch(cell.url + asset, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.notEqual(plain.headers.get('etag'), js.headers.get('etag'), 'each encoding has its own ETag');
    const etag = index.headers.get('etag')!;
    assert.equal(
      (await fetch(`${cell.url}/`, { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } })).status,
      304,
    );
    // screens fall back to index.html; the API, /health and unknown paths do not
    for (const p of ['/peers', '/peers/alice', '/store', '/portal', '/setup']) {
      const res = await fetch(cell.url + p);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/, p);
    }
    for (const p of [
      '/api/nope',
      '/api/peers/x.html',
      '/nope',
      '/assets/missing.js',
      '/peers/x.php',
      '/wp-login.php',
    ]) {
      const res = await fetch(cell.url + p);
      assert.notEqual(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', /json/, p);
    }
    const health = await fetch(`${cell.url}/health`);
    assert.match(health.headers.get('content-type') ?? '', /json/);
    assert.equal((await fetch(`${cell.url}/`, { method: 'POST' })).status, 404);
  });

  it('walks the whole wizard from an empty data dir, a field corrected, and ends on the dashboard', async () => {
    const context = await browser.newContext();
    const { page, problems } = await watchedPage(context);
    await page.goto(`${cell.url}/`);
    await page.waitForURL(`${cell.url}/setup`);
    // step 1: the admin, with a password that is too short first
    await page.getByLabel('Admin username').fill(ADMIN.username);
    await page.getByLabel('Admin password').fill('short');
    await page.getByRole('button', { name: 'Continue' }).click();
    const pwd = page.getByLabel('Admin password');
    await page.locator('.field-error').getByText('must be 12 to 1024 characters').waitFor();
    assert.equal(await pwd.getAttribute('aria-invalid'), 'true');
    await pwd.fill(ADMIN.password);
    await page.getByRole('button', { name: 'Continue' }).click();
    // step 2: identity, prefilled
    await page.getByLabel('Cell name').waitFor();
    assert.equal(await page.getByLabel('Cell name').inputValue(), 'mycell');
    await page.getByLabel('Cell name').fill('home');
    await page.getByLabel('Domain').fill('home.example.org');
    await page.getByRole('button', { name: 'Continue' }).click();
    // step 3: network
    await page.getByLabel('WireGuard port').waitFor();
    assert.equal(await page.getByLabel('WireGuard port').inputValue(), '51820');
    await page.getByLabel('Public endpoint (host:port)').fill('vpn.example.org:51820');
    await page.getByRole('button', { name: 'Continue' }).click();
    // step 4: review, then finish
    await page.getByText('vpn.example.org:51820').waitFor();
    await page.getByRole('button', { name: 'Finish setup' }).click();
    await page.waitForURL(`${cell.url}/dashboard`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByText('Health check duration').waitFor();
    assert.deepEqual(problems, []);
    await context.close();

    admin = new ApiClient(cell.url);
    assert.equal((await admin.login(ADMIN.username, ADMIN.password)).status, 200);
    const status = await admin.get('/api/setup/status');
    assert.equal(status.body.complete, true);
    const cfg = await admin.get('/api/config');
    assert.equal(cfg.status, 200, cfg.text);
    assert.match(cfg.text, /home\.example\.org/);
  });

  it('after setup, / leads to the login, and a 401 comes back to the same place after signing in', async () => {
    const context = await browser.newContext();
    const { page, problems } = await watchedPage(context);
    await page.goto(`${cell.url}/`);
    await page.waitForURL(`${cell.url}/login`);
    await page.goto(`${cell.url}/peers?q=ali`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill('wrong password, surely');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('invalid username or password').waitFor();
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${cell.url}/peers?q=ali`);
    assert.equal(await page.getByLabel('Search name or description').inputValue(), 'ali');
    // log out: the session is gone, a screen sends to the login again
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${cell.url}/login`);
    await page.goto(`${cell.url}/dashboard`);
    await page.waitForURL(/\/login\?next=%2Fdashboard/);
    // a `next` that leaves the console is ignored
    for (const next of ['//evil.example/', '/\\evil.example/', 'https://evil.example/']) {
      await page.goto(`${cell.url}/login?next=${encodeURIComponent(next)}`);
      await page.getByLabel('Username').fill(ADMIN.username);
      await page.getByLabel('Password').fill(ADMIN.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${cell.url}/dashboard`);
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL(`${cell.url}/login`);
    }
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('adds a peer, shows its one-time login and a QR code that decodes to the config the API serves', async () => {
    const { page, problems, dialogs, context } = await adminPage();
    await page.getByRole('link', { name: 'Peers' }).click();
    await page.getByRole('button', { name: 'Add a peer' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Alice');
    await page.getByRole('button', { name: 'Add peer' }).click();
    await page.locator('.field-error').getByText('must be 1-63 characters').waitFor(); // uppercase refused, per field
    await page.getByLabel('Name', { exact: true }).fill('alice');
    await page.getByLabel('Description', { exact: true }).fill(XSS);
    await page.getByLabel('Tags (comma separated)').fill('phone, family');
    await page.getByRole('button', { name: 'Add peer' }).click();
    const secret = page.getByRole('status', { name: 'Peer alice added' });
    await secret.waitFor();
    const password = (await page.getByTestId('new-password').innerText()).replace(/\s*Copy\s*$/, '').trim();
    assert.match(password, /^\S{12,}$/);

    const img = secret.getByRole('img', { name: 'WireGuard configuration of alice as a QR code' });
    await img.waitFor();
    const decoded = await decodeQrFromPage(page, 'img[alt="WireGuard configuration of alice as a QR code"]');
    const config = await admin.get('/api/peers/alice/config');
    assert.equal(config.status, 200);
    assert.equal(decoded, config.text);

    // the description is text, never markup; the row shows it and its tags
    const row = page.getByRole('row', { name: /alice/ });
    await row.getByText(XSS).waitFor();
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    await row.getByText('family').waitFor();
    assert.deepEqual(dialogs, []);
    assert.deepEqual(problems, []);

    // the peer's own page: edit, disable, traffic chart
    await row.getByRole('link', { name: 'alice' }).click();
    await page.waitForURL(`${cell.url}/peers/alice`);
    await page.getByText(XSS).first().waitFor();
    await page.getByLabel('Group').fill('family');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    assert.equal((await admin.get('/api/peers/alice')).body.peer.group, 'family');
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assert.deepEqual(dialogs, []);
    await context.close();
    state.alicePassword = password;
  });

  const state: { alicePassword?: string } = {};

  it('a peer signs in on a 360×740 screen after an admin reset: forced password change, then its portal', async () => {
    const { page: adminUi, context: adminCtx } = await adminPage();
    await adminUi.getByRole('link', { name: 'Users' }).click();
    await adminUi.getByRole('button', { name: 'Reset password of alice' }).click();
    await adminUi.getByRole('button', { name: 'Yes, reset password of alice' }).click();
    const shown = adminUi.locator('.secret .mono');
    await shown.waitFor();
    const temporary = (await shown.innerText()).trim();
    await adminCtx.close();

    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
    const { page, problems } = await watchedPage(context);
    await page.goto(`${cell.url}/`);
    await page.waitForURL(`${cell.url}/login`);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill(temporary);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/change-password/);
    await page.getByLabel('Current password').fill(temporary);
    await page.getByLabel('New password', { exact: true }).fill('alice has a new passphrase');
    await page.getByLabel('New password again').fill('alice has a new passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.waitForURL(`${cell.url}/portal`);
    await page.getByRole('heading', { name: 'My connection' }).waitFor();
    await page.getByText('You have no service accounts yet').waitFor();
    const decoded = await decodeQrFromPage(page, 'img[alt="WireGuard configuration of alice as a QR code"]');
    assert.equal(decoded, (await admin.get('/api/peers/alice/config')).text);
    const download = page.getByRole('link', { name: 'Download the configuration file' });
    assert.equal(await download.getAttribute('href'), '/api/peer/config?download=1');
    // nothing wider than the screen
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `the portal is ${overflow}px wider than a 360px screen`);
    // an admin screen is not for a peer: back to its own
    await page.goto(`${cell.url}/peers`);
    await page.waitForURL(`${cell.url}/portal`);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('every admin screen fits a 360 px screen, and the keyboard alone signs in with a visible focus', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const { page, problems } = await watchedPage(context);
    await page.goto(`${cell.url}/login`);
    await page.getByLabel('Username').waitFor();
    // the new screen's heading takes focus
    await page.waitForFunction(() => document.activeElement?.id === 'page-title');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement).name), 'username');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused control shows its focus');
    await page.keyboard.type(ADMIN.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${cell.url}/dashboard`);
    for (const screen of [
      '/dashboard',
      '/peers',
      '/peers/alice',
      '/store',
      '/vault',
      '/audit',
      '/users',
      '/change-password',
    ]) {
      await page.goto(cell.url + screen);
      await page.locator('h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `${screen} is ${overflow}px wider than a 360px screen`);
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea, button')]
          .filter((el) => {
            const e = el as HTMLInputElement;
            return !(
              e.labels?.length ||
              e.getAttribute('aria-label') ||
              (e.tagName === 'BUTTON' && e.textContent?.trim())
            );
          })
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      assert.deepEqual(unlabelled, [], `${screen}: every control is labelled`);
    }
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('refuses a form posted from another origin', async () => {
    const { page, context } = await adminPage();
    // another origin (localhost is another site than 127.0.0.1) whose page posts a form to the cell
    const target = `${cell.url}/api/peers`;
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id="f" method="POST" action="${target}" enctype="text/plain">` +
          `<input name='{"name":"evil","description":"' value='"}'></form>` +
          '<script>document.getElementById("f").submit()</script>',
      );
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const port = (evil.address() as AddressInfo).port;
      const answer = page.waitForResponse((r) => r.url() === target);
      await page.goto(`http://localhost:${port}/`);
      const res = await answer;
      assert.ok(res.status() === 401 || res.status() === 403 || res.status() === 415, `refused, got ${res.status()}`);
      const body = JSON.parse(await res.text());
      assert.equal(body.ok, false);
      assert.equal((await admin.get('/api/peers/evil')).status, 404, 'no peer was created');
    } finally {
      evil.close();
      await context.close();
    }
  });
});

/** Reads the QR image from the page (drawn onto a canvas at its own size) and decodes it with jsQR. */
async function decodeQrFromPage(page: Page, selector: string): Promise<string> {
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel) as HTMLImageElement | null;
    return img?.complete === true && img.naturalWidth > 0;
  }, selector);
  const dataUrl = await page.evaluate((sel) => {
    const img = document.querySelector(sel) as HTMLImageElement;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.getContext('2d')!.drawImage(img, 0, 0);
    return canvas.toDataURL('image/png');
  }, selector);
  const png = PNG.sync.read(Buffer.from(dataUrl.split(',')[1]!, 'base64'));
  const code = jsQR(
    new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length),
    png.width,
    png.height,
  );
  assert.ok(code, 'a QR code was found in the image');
  return code.data;
}
