import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCellExpectingFailure, startCellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';

/** Start-up checks of the vault key file, against the real process. */
describe('vault key file at start-up (real cell process)', () => {
  let dataDir: string;
  let otherDir: string;
  let recipient: string;
  const keyFile = () => join(dataDir, 'vault.key');

  async function refused(): Promise<string> {
    const { code, output } = await runCellExpectingFailure({ dataDir, timeoutMs: 10_000 });
    assert.equal(typeof code, 'number', `exited by itself:\n${output}`);
    assert.notEqual(code, 0, output);
    assert.doesNotMatch(output, /PIC cell listening/);
    assert.doesNotMatch(output, /^\s*at\s+\S/m, `a message, not a stack trace:\n${output}`);
    return output;
  }

  async function startsWithSameRecipient(): Promise<void> {
    const cell = await startCellProcess({ dataDir });
    try {
      const api = new ApiClient(cell.url);
      assert.equal((await api.login('admin', 'correct horse battery staple')).status, 200);
      assert.equal((await api.get('/api/vault/age-public-key')).body.recipient, recipient);
    } finally {
      await cell.stop();
    }
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'pic-vault-start-'));
    otherDir = mkdtempSync(join(tmpdir(), 'pic-vault-other-'));
    const cell = await startCellProcess({ dataDir });
    const api = new ApiClient(cell.url);
    await completeSetup(api);
    assert.equal((await api.post('/api/vault/certs', { name: 'www.home.example.org', type: 'server' })).status, 201);
    recipient = (await api.get('/api/vault/age-public-key')).body.recipient;
    await cell.stop();
    const other = await startCellProcess({ dataDir: otherDir }); // a second cell, for its key file
    await other.stop();
  });
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(otherDir, { recursive: true, force: true });
  });

  it('creates the key file with mode 0600 on first start', () => {
    assert.equal(statSync(keyFile()).mode & 0o777, 0o600);
    assert.equal(statSync(join(otherDir, 'vault.key')).mode & 0o777, 0o600);
  });

  it('refuses to start when the key file is readable by others, and says how to fix it', async () => {
    for (const mode of [0o644, 0o660]) {
      chmodSync(keyFile(), mode);
      const out = await refused();
      assert.ok(out.includes(keyFile()), out);
      assert.ok(out.includes(mode.toString(8).padStart(4, '0')), out);
      assert.match(out, /chmod 600/);
    }
    assert.equal(statSync(keyFile()).mode & 0o777, 0o660, 'the cell did not quietly change the mode');
    chmodSync(keyFile(), 0o600);
    await startsWithSameRecipient();
  });

  it('refuses to start without its key file, and does not make a new one in its place', async () => {
    const saved = readFileSync(keyFile());
    rmSync(keyFile());
    const out = await refused();
    assert.match(out, /missing/);
    assert.ok(out.includes(recipient), 'names the recipient the secrets need');
    assert.throws(() => statSync(keyFile()), /ENOENT/);
    writeFileSync(keyFile(), saved, { mode: 0o600 });
    await startsWithSameRecipient();
  });

  it("refuses another cell's key file", async () => {
    const saved = readFileSync(keyFile());
    copyFileSync(join(otherDir, 'vault.key'), keyFile());
    chmodSync(keyFile(), 0o600);
    const out = await refused();
    assert.match(out, /belongs to another database/);
    writeFileSync(keyFile(), saved, { mode: 0o600 });
    await startsWithSameRecipient();
  });
});
