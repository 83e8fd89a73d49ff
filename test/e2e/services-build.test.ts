import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/cell-process.js';
import { loadImageBuilder } from './services-helpers.js';

// The first-party builder's failure path, without building anything: a debootstrap that fails
// after printing 60 lines, and a docker that has no image, stand in on PATH. The error must carry
// the tail of debootstrap's output (what an admin needs to see), not just an exit code.
const isRoot = process.getuid?.() === 0;

describe('first-party image builder', () => {
  const bin = mkdtempSync(join(tmpdir(), 'pic-fake-bin-'));
  after(() => rmSync(bin, { recursive: true, force: true }));

  it("shows the last lines of debootstrap's output when it fails", {
    skip: isRoot ? false : 'needs root',
  }, async () => {
    const script = (body: string) => `#!/bin/sh\n${body}\n`;
    writeFileSync(
      join(bin, 'debootstrap'),
      script(
        'i=1; while [ $i -le 60 ]; do echo "I: step $i"; i=$((i+1)); done\n' +
          'echo "E: Couldn\'t find these debs: no-such-package" >&2; exit 1',
      ),
    );
    writeFileSync(join(bin, 'docker'), script('echo "Error: No such image" >&2; exit 1'));
    chmodSync(join(bin, 'debootstrap'), 0o755);
    chmodSync(join(bin, 'docker'), 0o755);
    const path = process.env['PATH'];
    process.env['PATH'] = `${bin}:${path}`;
    try {
      const builder = await loadImageBuilder();
      await assert.rejects(builder.buildFirstPartyImage('calendar', {}), (err: Error) => {
        assert.match(err.message, /debootstrap exited with 1; the last lines of its output:/);
        assert.match(err.message, /E: Couldn't find these debs: no-such-package/);
        assert.match(err.message, /I: step 60/);
        assert.doesNotMatch(err.message, /I: step 10\n/, 'only the tail');
        return true;
      });
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('build-image.mjs refuses an unknown service with a usage line', async () => {
    const cli = join(REPO_ROOT, 'scripts', 'images', 'first-party', 'build-image.mjs');
    await assert.rejects(promisify(execFile)(process.execPath, [cli]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /usage: build-image\.mjs <calendar\|email\|files\|service dir>/);
      return true;
    });
    await assert.rejects(
      promisify(execFile)(process.execPath, [cli, 'nonsense']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /unknown service "nonsense"/);
        return true;
      },
    );
  });
});
