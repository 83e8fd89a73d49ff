import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { ADMIN } from '../support/client.js';
import { openCellDb } from '../support/db.js';
import { startReadyCell, type ReadyCell } from '../support/ready-cell.js';
import { launchBrowser, watchedPage, type Browser, type Page } from '../support/browser.js';

// The vault, audit and users screens and the password changes in a real browser against a real
// cell process. Every step is checked against what the API says afterwards, not only the page:
// trust keys added (after the fingerprint is shown and confirmed) and removed, the CA certificate
// downloaded, the audit chain verified (intact, then tampered with), CSV and JSON exports that
// parse to the API's entries, a password reset that forces a change at the next sign-in, and a
// change from the account menu after which only the new password signs in.
const browserOrSkip = await launchBrowser();
after(async () => {
  if (!('skip' in browserOrSkip)) await browserOrSkip.close();
});

describe('the vault, audit and users screens (real cell process, real browser)', () => {
  if ('skip' in browserOrSkip) {
    it('needs a browser', { skip: `NO BROWSER, console e2e not run: ${browserOrSkip.skip}` }, () => {});
    return;
  }
  const browser: Browser = browserOrSkip;
  let ready: ReadyCell;
  let adminPassword = ADMIN.password;
  before(async () => {
    ready = await startReadyCell();
  });
  after(async () => {
    await ready?.cell.destroy();
  });

  /** A signed-in admin page in a fresh browser context that accepts downloads. */
  const adminPage = async () => {
    const context = await browser.newContext({ acceptDownloads: true });
    const w = await watchedPage(context);
    await signIn(w.page, ready.cell.url, ADMIN.username, adminPassword);
    await w.page.waitForURL(`${ready.cell.url}/dashboard`);
    return { ...w, context };
  };

  it('a screen whose file cannot be fetched says so, and loads after a reload', async () => {
    const { page, context } = await adminPage();
    // the screen's own chunk fails (as when the cell was updated while the page was open)
    await page.route(/\/assets\/Audit-[^/]+\.js$/, (route) => route.abort());
    await page.goto(`${ready.cell.url}/audit`);
    await page.getByRole('alert').filter({ hasText: 'This screen could not be loaded' }).waitFor();
    await page.unroute(/\/assets\/Audit-[^/]+\.js$/);
    await page.getByRole('button', { name: 'Reload the console' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await context.close();
  });

  it('trusts a store key only after its fingerprint is shown and confirmed, and removes it', async () => {
    const { page, problems, context } = await adminPage();
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const fingerprint = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex');

    await page.getByRole('link', { name: 'Vault' }).click();
    await page.getByRole('heading', { name: 'Trusted store keys' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('test-store');
    await page.getByLabel('Public key (PEM)').fill(pem);
    // the browser's own SHA-256 of the key, before anything is sent
    await page.getByRole('status').filter({ hasText: fingerprint }).waitFor();
    const trust = page.getByRole('button', { name: 'Trust this key' });
    assert.equal(await trust.isDisabled(), true, 'not before the fingerprint is confirmed');
    await page.getByLabel("I compared the fingerprint with the store's").check();
    await trust.click();
    const item = page.getByRole('listitem').filter({ hasText: 'test-store' });
    await item.getByText(fingerprint).waitFor();
    const keys = await ready.admin.get('/api/vault/trust-keys');
    const added = keys.body.trust_keys.find((k: { name: string }) => k.name === 'test-store');
    assert.equal(added?.fingerprint, fingerprint, JSON.stringify(keys.body));
    assert.equal(added?.key_type, 'ed25519');

    // a private key pasted by mistake is refused on its field, and nothing is added
    const { privateKey } = generateKeyPairSync('ed25519');
    await page.getByLabel('Name', { exact: true }).fill('oops');
    await page.getByLabel('Public key (PEM)').fill(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    await page.getByLabel("I compared the fingerprint with the store's").check();
    await trust.click();
    await page.getByRole('alert').filter({ hasText: 'Key not added' }).waitFor();
    assert.equal(await page.getByLabel('Public key (PEM)').getAttribute('aria-invalid'), 'true');
    const after1 = await ready.admin.get('/api/vault/trust-keys');
    assert.deepEqual(
      after1.body.trust_keys.map((k: { name: string }) => k.name),
      ['test-store'],
    );

    // remove: asks first, then the cell no longer trusts it
    await item.getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('button', { name: 'Yes, remove' }).click();
    await item.waitFor({ state: 'detached' });
    assert.deepEqual((await ready.admin.get('/api/vault/trust-keys')).body.trust_keys, []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("downloads the cell's CA certificate", async () => {
    const { page, problems, context } = await adminPage();
    await page.goto(`${ready.cell.url}/vault`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download the CA certificate' }).click(),
    ]);
    const file = readFileSync((await download.path())!, 'utf8');
    const served = await ready.admin.get('/api/vault/ca.crt');
    assert.equal(served.status, 200);
    // the name the cell gives it
    assert.equal(`attachment; filename="${download.suggestedFilename()}"`, served.headers.get('content-disposition'));
    assert.equal(file, served.text);
    const cert = new X509Certificate(file);
    assert.equal(cert.ca, true, 'a CA certificate');
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('verifies the audit chain on request and exports the filtered log as CSV and JSON', async () => {
    const { page, problems, context } = await adminPage();
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    const verified = await ready.admin.get('/api/audit/verify');
    assert.equal(verified.body.valid, true);
    await page
      .getByRole('status')
      .filter({ hasText: `The chain is intact: ${verified.body.entries} entries` })
      .waitFor();

    // the exports carry the screen's filters: the trust-key additions of the first test
    await page.getByLabel('Action').fill('vault.trust_key.add');
    await page.getByText(/^1–\d+ of \d+$/).waitFor();
    const listed = await ready.admin.get('/api/audit?action=vault.trust_key.add&limit=1000');
    assert.ok(listed.body.total >= 2, 'one key added, one refused');
    await page.getByText(`1–${listed.body.total} of ${listed.body.total}`).waitFor();
    const ids = (listed.body.entries as Array<{ id: number }>).map((e) => e.id).sort((a, b) => a - b);

    const fetchDownload = async (name: string) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name }).click()]);
      return { name: download.suggestedFilename(), text: readFileSync((await download.path())!, 'utf8') };
    };
    const csv = await fetchDownload('Export CSV');
    assert.match(csv.name, /^audit-.*\.csv$/);
    const rows = parseCsv(csv.text, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(
      rows.map((r) => Number(r['id'])).sort((a, b) => a - b),
      ids,
    );
    assert.ok(rows.every((r) => r['action'] === 'vault.trust_key.add'));
    assert.deepEqual(
      rows.map((r) => r['result']).sort(),
      (listed.body.entries as Array<{ result: string }>).map((e) => e.result).sort(),
    );

    const json = await fetchDownload('Export JSON');
    assert.match(json.name, /^audit-.*\.json$/);
    const entries = JSON.parse(json.text) as Array<{ id: number; action: string }>;
    assert.deepEqual(
      entries.map((e) => e.id).sort((a, b) => a - b),
      ids,
    );
    assert.ok(entries.every((e) => e.action === 'vault.trust_key.add'));

    // an edited entry: the button now shows the break, where the API finds it
    const db = openCellDb(ready.cell.dataDir);
    const target = ids[0]!;
    try {
      const before = db.prepare('SELECT entry FROM audit_log WHERE id = ?').get(target) as { entry: string };
      db.prepare('UPDATE audit_log SET entry = ? WHERE id = ?').run(
        before.entry.replace('"vault.trust_key.add"', '"vault.trust_key.delete"'),
        target,
      );
      const broken = await ready.admin.get('/api/audit/verify');
      assert.equal(broken.body.valid, false);
      assert.equal(broken.body.first_broken_id, target);
      await page.getByRole('button', { name: 'Verify the chain' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: `The chain is broken at entry ${target}` })
        .waitFor();
      db.prepare('UPDATE audit_log SET entry = ? WHERE id = ?').run(before.entry, target);
    } finally {
      db.close();
    }
    assert.equal((await ready.admin.get('/api/audit/verify')).body.valid, true, 'restored');
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page.getByRole('status').filter({ hasText: 'The chain is intact' }).waitFor();
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("lists the users, and a reset password must be changed at the user's next sign-in", async () => {
    const peer = await ready.admin.post('/api/peers', { name: 'bob' });
    assert.equal(peer.status, 201, peer.text);
    const first = peer.body.login.password as string;
    const { page, problems, context } = await adminPage();
    await page.getByRole('link', { name: 'Users' }).click();
    const users = (await ready.admin.get('/api/auth/users?limit=100')).body.users as Array<{
      username: string;
      role: string;
    }>;
    await page.getByText(`${users.length} users`).waitFor();
    const shownRows = await page
      .locator('tbody tr')
      .evaluateAll((rows) =>
        rows.map((r) => [...(r as HTMLTableRowElement).cells].slice(0, 2).map((c) => c.textContent)),
      );
    assert.deepEqual(
      shownRows,
      users.map((u) => [u.username, u.role]),
    );
    assert.deepEqual(users.map((u) => u.username).sort(), [ADMIN.username, 'bob'].sort());

    await page.getByRole('button', { name: 'Reset password of bob' }).click();
    await page.getByRole('button', { name: 'Yes, reset password of bob' }).click();
    const shown = page.locator('.secret .mono');
    await shown.waitFor();
    const temporary = (await shown.innerText()).trim();
    assert.notEqual(temporary, first);
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'bob', exact: true }) });
    await row.getByText('must change password').waitFor();
    const listed = (await ready.admin.get('/api/auth/users?limit=100')).body.users.find(
      (u: { username: string }) => u.username === 'bob',
    );
    assert.equal(listed.must_change_password, true);
    assert.equal((await ready.anon().login('bob', first)).status, 401, 'the old password is gone');
    await context.close();

    // bob signs in with the temporary password: the change comes first, and is forced
    const bobContext = await browser.newContext();
    const bob = await watchedPage(bobContext);
    await signIn(bob.page, ready.cell.url, 'bob', temporary);
    await bob.page.waitForURL(/\/change-password/);
    await bob.page.getByText('An administrator reset your password').waitFor();
    await bob.page.goto(`${ready.cell.url}/portal`);
    await bob.page.waitForURL(/\/change-password/);
    await bob.page.getByLabel('Current password').fill(temporary);
    await bob.page.getByLabel('New password', { exact: true }).fill('bob chose this passphrase');
    await bob.page.getByLabel('New password again').fill('bob chose this passphrase');
    await bob.page.getByRole('button', { name: 'Change password' }).click();
    await bob.page.waitForURL(`${ready.cell.url}/portal`);
    const client = ready.anon();
    assert.equal((await client.login('bob', 'bob chose this passphrase')).status, 200);
    assert.equal((await client.get('/api/auth/me')).body.user.must_change_password, false);
    assert.equal((await ready.anon().login('bob', temporary)).status, 401);
    assert.deepEqual(problems, []);
    assert.deepEqual(bob.problems, []);
    await bobContext.close();
  });

  it('changes the signed-in admin password from the account menu; only the new one signs in', async () => {
    const { page, problems, context } = await adminPage();
    await page.getByRole('link', { name: 'Change password' }).click();
    await page.waitForURL(`${ready.cell.url}/change-password`);
    assert.equal(await page.getByText('An administrator reset your password').count(), 0, 'not a forced change');
    const fresh = 'the admin picked a new passphrase';
    // a wrong current password: refused, and the old password still works
    await page.getByLabel('Current password').fill('not the current one at all');
    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByLabel('New password again').fill(fresh);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').filter({ hasText: 'Password not changed' }).waitFor();
    assert.equal((await ready.anon().login(ADMIN.username, adminPassword)).status, 200);

    await page.getByLabel('Current password').fill(adminPassword);
    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByLabel('New password again').fill(fresh);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password is changed.').waitFor();
    assert.equal(page.url(), `${ready.cell.url}/change-password`, 'a chosen change stays on the screen');
    assert.equal((await ready.anon().login(ADMIN.username, adminPassword)).status, 401, 'the old one is refused');
    const old = adminPassword;
    adminPassword = fresh;

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${ready.cell.url}/login`);
    await signIn(page, ready.cell.url, ADMIN.username, old);
    await page.getByText('invalid username or password').waitFor();
    await signIn(page, ready.cell.url, ADMIN.username, fresh);
    await page.waitForURL(`${ready.cell.url}/dashboard`);
    assert.deepEqual(problems, []);
    await context.close();
  });
});

async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  if (!page.url().startsWith(`${url}/login`)) await page.goto(`${url}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
