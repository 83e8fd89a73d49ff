import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileReadError, readRegularFile } from './read-file.js';

const problem = (p: string) => (err: unknown) => err instanceof FileReadError && err.problem === p;

describe('readRegularFile: catalog files are regular, bounded and timed', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pic-read-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a regular file within its bound', async () => {
    writeFileSync(join(dir, 'ok.json'), '{"a":1}');
    assert.equal((await readRegularFile(join(dir, 'ok.json'), { maxBytes: 7 })).toString(), '{"a":1}');
    writeFileSync(join(dir, 'empty'), '');
    assert.equal((await readRegularFile(join(dir, 'empty'), { maxBytes: 1 })).length, 0);
  });

  it('refuses a missing file, a directory, a symbolic link', async () => {
    await assert.rejects(readRegularFile(join(dir, 'absent'), { maxBytes: 10 }), problem('missing'));
    mkdirSync(join(dir, 'a-dir'));
    await assert.rejects(
      readRegularFile(join(dir, 'a-dir'), { maxBytes: 10 }),
      (err: unknown) => problem('not_regular')(err) && /directory/.test(String(err)),
    );
    writeFileSync(join(dir, 'target'), 'x');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    await assert.rejects(readRegularFile(join(dir, 'link'), { maxBytes: 10 }), problem('not_regular'));
  });

  it('refuses a FIFO at once, without waiting for a writer', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    // Several at once: more than libuv's 4 threads. A blocking open would hold each of them.
    // Each read gets its handler at once: one refused while another is awaited is not "unhandled".
    const isFifo = (err: unknown) => problem('not_regular')(err) && /FIFO/.test(String(err));
    const reads = Array.from({ length: 8 }, () =>
      assert.rejects(readRegularFile(fifo, { maxBytes: 10, timeoutMs: 10_000 }), isFifo),
    );
    await Promise.all(reads);
    // Well under the 10 s limit: a blocking open would only end at it.
    assert.ok(performance.now() - started < 5000, 'answered without waiting');
    writeFileSync(join(dir, 'after'), 'still fine');
    assert.equal(
      (await readRegularFile(join(dir, 'after'), { maxBytes: 100 })).toString(),
      'still fine',
      'the thread pool is free',
    );
  });

  it('refuses a file over the bound before reading it (a sparse 4 GiB file)', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, '');
    truncateSync(big, 4 * 1024 ** 3);
    const started = performance.now();
    await assert.rejects(
      readRegularFile(big, { maxBytes: 1024 * 1024 }),
      (err: unknown) => problem('too_large')(err) && /4294967296/.test(String(err)),
    );
    assert.ok(performance.now() - started < 1000, 'refused from fstat, not by reading');
    writeFileSync(join(dir, 'eleven'), 'x'.repeat(11));
    await assert.rejects(readRegularFile(join(dir, 'eleven'), { maxBytes: 10 }), problem('too_large'));
  });

  it('refuses a device such as /dev/zero (endless data)', async () => {
    await assert.rejects(
      readRegularFile('/dev/zero', { maxBytes: 10 }),
      (err: unknown) => problem('not_regular')(err) && /device/.test(String(err)),
    );
  });
});
