import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';
import { launchBrowser, watchedPage, type Browser } from '../support/browser.js';
import { loadManifestModule, writeCatalog, TEST_ECHO_MANIFEST } from './store-helpers.js';

// The store browser in a real browser against a real cell with no container engine: the tests'
// own signed catalog listed as verified with its signing key, a service description holding
// markup shown as text, an install refused in words, then a tampered manifest and a catalog
// signed by an untrusted key shown as refused with the reason and what to do.
const XSS = '<img src=x onerror=alert(1)>';
const browserOrSkip = await launchBrowser();
after(async () => {
  if (!('skip' in browserOrSkip)) await browserOrSkip.close();
});

describe('the store browser with a signed test catalog, then a tampered one (real cell process, no engine)', () => {
  if ('skip' in browserOrSkip) {
    it('needs a browser', { skip: `NO BROWSER, console e2e not run: ${browserOrSkip.skip}` }, () => {});
    return;
  }
  const browser: Browser = browserOrSkip;
  let cell: CellProcess;
  let api: ApiClient;
  let catalogDir: string;
  let m: Awaited<ReturnType<typeof loadManifestModule>>;
  let key: ReturnType<Awaited<ReturnType<typeof loadManifestModule>>['generateStoreKeyPair']>;
  let manifest: any;

  before(async () => {
    m = await loadManifestModule();
    key = m.generateStoreKeyPair();
    manifest = m.parseManifest(readFileSync(TEST_ECHO_MANIFEST, 'utf8'), 'manifests/test-echo.yaml');
    manifest.description = `Echoes requests. ${XSS}`;
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-console-catalog-'));
    await writeCatalog(m, catalogDir, { version: 1, key: key.privateKey, manifest });
    cell = await startCellProcess({
      cellYaml: `store:\n  catalog_dir: ${catalogDir}\n  engine_socket: ${join(catalogDir, 'no-engine.sock')}\n`,
    });
    api = new ApiClient(cell.url);
    await completeSetup(api);
    const trusted = await api.post('/api/vault/trust-keys', {
      name: 'test-store',
      public_key: m.publicKeyPem(key.publicKey),
    });
    assert.equal(trusted.status, 201, trusted.text);
  });
  after(async () => {
    await cell?.destroy();
    if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
  });

  it('lists the verified catalog with its key, catalog text as text, an install refusal in words', async () => {
    const context = await browser.newContext();
    const { page, problems, dialogs } = await watchedPage(context);
    await page.goto(`${cell.url}/store`);
    await page.waitForURL(/\/login/);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('correct horse battery staple');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${cell.url}/store`);
    assert.equal(await page.getByTestId('signed-by').innerText(), m.keyFingerprint(key.publicKey));
    await page.getByText(`Echoes requests. ${XSS}`).waitFor();
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    await page.getByText(/Container engine: not reachable/).waitFor();
    await page.getByRole('button', { name: 'Install Test Echo' }).click();
    await page.getByRole('alert').filter({ hasText: 'Not installed' }).waitFor();
    assert.deepEqual(dialogs, []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('shows a tampered manifest and an untrusted catalog as refused, with the reason and what to do', async () => {
    await writeCatalog(m, catalogDir, {
      version: 2,
      key: key.privateKey,
      manifest,
      tamper: (man) => (man.containers[0].env.PIC_HTTP_PORT = '9090'),
    });
    const context = await browser.newContext();
    const { page } = await watchedPage(context);
    await page.goto(`${cell.url}/login?next=%2Fstore`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('correct horse battery staple');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${cell.url}/store`);
    const refused = page.getByRole('alert').filter({ hasText: 'This manifest was refused' });
    await refused.waitFor();
    assert.match(await refused.innerText(), /digest[-_]mismatch/);
    assert.match(await refused.innerText(), /What to do: .*get the catalog again/i);

    const stranger = m.generateStoreKeyPair();
    await writeCatalog(m, catalogDir, { version: 3, key: stranger.privateKey, manifest });
    await page.reload();
    const catalog = page.getByRole('alert').filter({ hasText: 'The catalog was refused' });
    await catalog.waitFor();
    assert.match(await catalog.innerText(), /untrusted[-_]key/);
    assert.match(await catalog.innerText(), /Trust keys/);
    await context.close();
  });
});
