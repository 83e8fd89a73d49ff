import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CellProcess } from '../support/cell-process.js';
import { ADMIN, type ApiClient } from '../support/client.js';
import { buildTestEchoImage, startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import { launchBrowser, watchedPage, type Browser, type Page } from '../support/browser.js';
import {
  loadManifestModule,
  testEchoManifest,
  writeCatalog,
  type ManifestModule,
  startStoreCell,
} from './store-helpers.js';

// The store browser on the real engine, in a real browser: test-echo installed from the tests'
// signed catalog with its job's progress on screen, an account given to a peer, the peer copying
// its credentials from its portal on a 360×740 screen, then the service removed again.
const engineStart = await startDockerEngine();
const browserStart = 'skip' in engineStart ? undefined : await launchBrowser();

describe('the store browser on a real container engine (real cell process, real browser)', () => {
  if ('skip' in engineStart) {
    it('needs a container engine', {
      skip: `NO CONTAINER ENGINE, console store e2e not run: ${engineStart.skip}`,
    }, () => {});
    return;
  }
  if (!browserStart || 'skip' in browserStart) {
    it('needs a browser', {
      skip: `NO BROWSER, console store e2e not run: ${browserStart?.skip ?? '?'}`,
    }, async () => {
      await engineStart.stop();
    });
    return;
  }
  const engine: DockerEngine = engineStart;
  const browser: Browser = browserStart;
  let m: ManifestModule;
  let storeKey: { privateKey: KeyObject; publicKey: KeyObject };
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  const BOB = { name: 'bob', password: 'bob has a long passphrase' };

  before(async () => {
    m = await loadManifestModule();
    const digest = await buildTestEchoImage(engine.socketPath);
    storeKey = m.generateStoreKeyPair();
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-console-store-'));
    await writeCatalog(m, catalogDir, {
      version: 1,
      key: storeKey.privateKey,
      manifest: await testEchoManifest(m, digest, storeKey.privateKey),
    });
    ({ cell, api } = await startStoreCell(m, catalogDir, engine.socketPath, storeKey.publicKey));
    const peer = await api.post('/api/peers', { name: BOB.name, password: BOB.password });
    assert.equal(peer.status, 201, peer.text);
  });

  after(async () => {
    try {
      if (cell) {
        await api.post('/api/store/remove', { id: 'test-echo', purge: true }).catch(() => undefined);
        await cell.destroy();
      }
      if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
      await browser.close();
    } finally {
      await engine.stop();
    }
  });

  const signIn = async (page: Page, username: string, password: string, next: string) => {
    await page.goto(`${cell.url}/login?next=${encodeURIComponent(next)}`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${cell.url}${next}`);
  };

  /** Every job state the page shows until it shows `until`. */
  const watchJob = async (page: Page, until: string) => {
    const seen: string[] = [];
    const state = page.getByTestId('job-test-echo').getByTestId('job-state');
    await state.waitFor({ timeout: 30_000 });
    const deadline = Date.now() + 90_000;
    for (;;) {
      const s = (await state.innerText().catch(() => '')).trim();
      if (s && seen.at(-1) !== s) seen.push(s);
      if (s === until || s === 'failed' || Date.now() > deadline) break;
      await page.waitForTimeout(100);
    }
    return seen;
  };

  it('installs test-echo with its job on screen, gives a peer an account, the peer copies it', async () => {
    const context = await browser.newContext();
    const { page, problems } = await watchedPage(context);
    await signIn(page, ADMIN.username, ADMIN.password, '/store');
    await page.getByRole('button', { name: 'Install Test Echo' }).click();
    const states = await watchJob(page, 'healthy');
    assert.equal(states.at(-1), 'healthy', `job states shown: ${states.join(' → ')}`);
    assert.ok(states.length >= 2, `the progress was visible before the end: ${states.join(' → ')}`);
    await page.getByTestId('state-test-echo').getByText('installed').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Restart test-echo' }).waitFor();

    await page.getByLabel('Give a peer an account').fill(BOB.name);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('button', { name: 'Show credentials' }).click();
    const shown = (await page.getByTestId('cred-password').innerText()).trim();
    const creds = await api.get(`/api/services/catalog/test-echo/accounts/${BOB.name}/credentials`);
    assert.equal(creds.status, 200, creds.text);
    assert.equal(shown, creds.body.credentials[0].password);
    // the same from the peer's own page
    await page.goto(`${cell.url}/peers/${BOB.name}`);
    await page.getByRole('button', { name: `Show ${BOB.name}'s service credentials` }).click();
    const article = page.getByRole('article', { name: 'Test Echo' });
    assert.equal((await article.getByTestId('cred-password').innerText()).trim(), creds.body.credentials[0].password);
    assert.deepEqual(problems, []);

    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    await phone.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cell.url });
    const peer = await watchedPage(phone);
    await signIn(peer.page, BOB.name, BOB.password, '/portal');
    await peer.page.getByRole('heading', { name: 'Test Echo' }).waitFor();
    await peer.page.getByRole('button', { name: 'Copy Echo (HTTP) password' }).click();
    await peer.page.getByRole('button', { name: 'Copy Echo (HTTP) password' }).getByText('Copied').waitFor();
    assert.equal(await peer.page.evaluate(() => navigator.clipboard.readText()), creds.body.credentials[0].password);
    await peer.page.getByRole('button', { name: 'Copy Echo (HTTP) username' }).click();
    assert.equal(await peer.page.evaluate(() => navigator.clipboard.readText()), BOB.name);
    const overflow = await peer.page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `the portal is ${overflow}px wider than a 360px screen`);
    assert.deepEqual(peer.problems, []);
    await phone.close();

    // and removed again, with its job shown
    await page.goto(`${cell.url}/store`);
    await page.getByRole('button', { name: 'Remove Test Echo' }).click();
    await page.getByRole('button', { name: 'Yes, remove test echo' }).click();
    const removal = await watchJob(page, 'removed');
    assert.equal(removal.at(-1), 'removed', `job states shown: ${removal.join(' → ')}`);
    await page.getByTestId('state-test-echo').getByText('available').waitFor({ timeout: 15_000 });
    assert.equal((await api.get('/api/test-echo/accounts')).status, 404);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
