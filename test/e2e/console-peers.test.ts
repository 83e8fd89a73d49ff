import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN } from '../support/client.js';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';
import { launchBrowser, watchedPage, type Browser } from '../support/browser.js';

// The peers screen in a real browser against a real cell with 60 peers: paging, search by group
// and tag, and batch disable and delete on a selection.
const browserOrSkip = await launchBrowser();
after(async () => {
  if (!('skip' in browserOrSkip)) await browserOrSkip.close();
});

describe('the peers screen with many peers (real cell process, real browser)', () => {
  if ('skip' in browserOrSkip) {
    it('needs a browser', { skip: `NO BROWSER, console e2e not run: ${browserOrSkip.skip}` }, () => {});
    return;
  }
  const browser: Browser = browserOrSkip;
  let ready: ReadyCell;
  before(async () => {
    ready = await startReadyCell();
  });
  after(async () => {
    await ready?.cell.destroy();
  });

  it('finds peers among many by search, group and tag, pages through them, and acts on a selection', async () => {
    const peers = Array.from({ length: 60 }, (_, i) => ({
      name: `bulk-${String(i).padStart(2, '0')}`,
      group: i % 2 ? 'odd' : 'even',
      tags: [`t${i % 3}`],
    }));
    const added = await ready.admin.post('/api/peers/batch', { action: 'add', peers });
    assert.ok(added.status === 200 || added.status === 201, added.text);
    const context = await browser.newContext();
    const { page, problems } = await watchedPage(context);
    await page.goto(`${ready.cell.url}/login`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${ready.cell.url}/dashboard`);
    await page.goto(`${ready.cell.url}/peers`);
    await page.getByText('Peers 1–50 of 60').waitFor();
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Peers 51–60 of 60').waitFor();
    await page.getByLabel('Group').fill('odd');
    await page.getByText('Peers 1–30 of 30').waitFor();
    await page.getByLabel('Tag').fill('t0');
    await page.getByText('Peers 1–10 of 10').waitFor();
    await page.getByLabel('Select every peer on this page').check();
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('Done: disable of 10 peers.').waitFor();
    const disabled = await ready.admin.get('/api/peers?group=odd&tag=t0&enabled=false&limit=100');
    assert.equal(disabled.body.total, 10);
    await page.getByLabel('Select every peer on this page').check();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Yes, delete' }).click();
    await page.getByText('Done: delete of 10 peers.').waitFor();
    await page.getByText('No peers match.').waitFor();
    assert.equal((await ready.admin.get('/api/peers?limit=1')).body.total, 50);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
