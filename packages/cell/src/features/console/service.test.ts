import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { silentLogger } from '../../lib/logger.js';
import { ConsoleAssets, isScreenPath } from './service.js';

function builtDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pic-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/assets/index-abc.js"></script>');
  writeFileSync(join(dir, 'assets', 'index-abc.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
  writeFileSync(join(dir, '.inputs'), 'hash\n');
  return dir;
}

describe('console assets', () => {
  it('falls back to index.html for the console screens only', () => {
    for (const p of ['/setup', '/login', '/peers', '/peers/alice', '/store', '/portal', '/PEERS/x'])
      assert.equal(isScreenPath(p), true, p);
    for (const p of [
      '/',
      '/api/peers',
      '/health',
      '/nope',
      '/peers/x.php',
      '/assets/a.js',
      '/favicon.ico',
      '/wp-admin',
    ]) {
      assert.equal(isScreenPath(p), false, p);
    }
  });

  it('serves built files and index.html, hashed assets immutable, never dotfiles', () => {
    const dir = builtDir();
    try {
      const assets = new ConsoleAssets(dir, silentLogger);
      assets.start();
      assert.equal(assets.unavailable, undefined);
      const index = assets.resolve('/')!;
      assert.equal(index.immutable, false);
      assert.match(index.type, /text\/html/);
      assert.equal(assets.resolve('/peers/alice'), index);
      const js = assets.resolve('/assets/index-abc.js')!;
      assert.equal(js.immutable, true);
      assert.match(js.type, /javascript/);
      assert.equal(gunzipSync(js.gzipped!).toString(), js.body.toString());
      assert.equal(assets.resolve('/.inputs'), undefined);
      assert.equal(assets.resolve('/assets/missing.js'), undefined);
      assert.equal(assets.resolve('/nope'), undefined);
      assets.stop();
      assert.equal(assets.resolve('/'), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves the build's precompressed .gz as the gzip encoding, but never a stale one", () => {
    const dir = builtDir();
    try {
      const body = readFileSync(join(dir, 'assets', 'index-abc.js'));
      const built = gzipSync(body, { level: 1 });
      writeFileSync(join(dir, 'assets', 'index-abc.js.gz'), built);
      writeFileSync(join(dir, 'assets', 'other.css'), 'a{}'.repeat(600));
      writeFileSync(join(dir, 'assets', 'other.css.gz'), gzipSync('b{}'.repeat(600)));
      const assets = new ConsoleAssets(dir, silentLogger);
      assets.start();
      assert.deepEqual(assets.resolve('/assets/index-abc.js')!.gzipped, built);
      assert.equal(assets.resolve('/assets/index-abc.js.gz'), undefined);
      const css = assets.resolve('/assets/other.css')!;
      assert.notEqual(css.gzipped, undefined);
      assert.equal(gunzipSync(css.gzipped!).toString(), 'a{}'.repeat(600));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says why when the console is not built', () => {
    const assets = new ConsoleAssets(join(tmpdir(), 'pic-no-such-console-dir'), silentLogger);
    assets.start();
    assert.match(assets.unavailable ?? '', /cannot read/);
    assert.equal(assets.resolve('/'), undefined);
  });
});
