import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import tar from 'tar-stream';
import { buildImageArchive, type ImageArchiveSpec } from './archive.js';
import { BUSYBOX_STATIC, isStaticElf, testEchoArchive } from './test-echo.js';

async function listTar(
  buf: Buffer,
): Promise<Map<string, { type: string; mode: number; mtime: number; body: Buffer; linkname: string | null }>> {
  const out = new Map<string, { type: string; mode: number; mtime: number; body: Buffer; linkname: string | null }>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.set(header.name, {
          type: header.type ?? 'file',
          mode: header.mode ?? 0,
          mtime: header.mtime?.getTime() ?? 0,
          body: Buffer.concat(chunks),
          linkname: header.linkname ?? null,
        });
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(buf);
  await done;
  return out;
}

const spec = (content: string): ImageArchiveSpec => ({
  repoTag: 'pic-archive-test:1',
  entries: [
    { type: 'file', path: '/usr/local/bin/hello', content, mode: 0o755 },
    { type: 'symlink', path: '/bin/sh', target: 'busybox' },
    { type: 'dir', path: '/tmp', mode: 0o1777 },
  ],
  config: {
    cmd: ['/usr/local/bin/hello'],
    env: { PATH: '/bin' },
    exposedPorts: ['8080/tcp'],
    labels: { b: '2', a: '1' },
  },
  architecture: 'amd64',
});

describe('deterministic image archives (docker save format)', () => {
  it('the same inputs give the same bytes and digest; other content another digest', async () => {
    const one = await buildImageArchive(spec('#!/bin/sh\necho hi\n'));
    const two = await buildImageArchive(spec('#!/bin/sh\necho hi\n'));
    const other = await buildImageArchive(spec('#!/bin/sh\necho bye\n'));
    assert.ok(one.archive.equals(two.archive));
    assert.equal(one.digest, two.digest);
    assert.notEqual(one.digest, other.digest);
    assert.match(one.digest, /^sha256:[0-9a-f]{64}$/);
  });

  it('the digest is the sha256 of the config JSON the manifest names, which lists the layer', async () => {
    const built = await buildImageArchive(spec('x'));
    const files = await listTar(built.archive);
    const manifest = JSON.parse(files.get('manifest.json')!.body.toString()) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0]!.RepoTags, ['pic-archive-test:1']);
    const config = files.get(manifest[0]!.Config)!.body;
    assert.equal(`sha256:${createHash('sha256').update(config).digest('hex')}`, built.digest);
    const layer = files.get(manifest[0]!.Layers[0]!)!.body;
    assert.equal(`sha256:${createHash('sha256').update(layer).digest('hex')}`, built.layerDiffId);
    const parsed = JSON.parse(config.toString()) as {
      rootfs: { diff_ids: string[] };
      config: { Labels: Record<string, string>; ExposedPorts: object };
    };
    assert.deepEqual(parsed.rootfs.diff_ids, [built.layerDiffId]);
    assert.deepEqual(Object.keys(parsed.config.Labels), ['a', 'b'], 'labels sorted');

    const entries = await listTar(layer);
    assert.deepEqual(
      [...entries.keys()],
      ['bin/', 'bin/sh', 'tmp/', 'usr/', 'usr/local/', 'usr/local/bin/', 'usr/local/bin/hello'],
      'parents added, sorted',
    );
    assert.equal(entries.get('usr/local/bin/hello')!.mode, 0o755);
    assert.equal(entries.get('tmp/')!.mode, 0o1777);
    assert.equal(entries.get('bin/sh')!.linkname, 'busybox');
    assert.ok(
      [...entries.values()].every((e) => e.mtime === Date.UTC(2000, 0, 1)),
      'fixed times',
    );
  });

  it('refuses paths outside the image and duplicates', async () => {
    await assert.rejects(
      buildImageArchive({ ...spec(''), entries: [{ type: 'dir', path: '../x' }] }),
      /not inside the image/,
    );
    await assert.rejects(
      buildImageArchive({
        ...spec(''),
        entries: [
          { type: 'dir', path: '/a' },
          { type: 'dir', path: 'a/' },
        ],
      }),
      /listed twice/,
    );
  });

  it('test-echo: built from the host’s static busybox, reproducibly', {
    skip: existsSync(BUSYBOX_STATIC) ? false : `${BUSYBOX_STATIC} is missing: install busybox-static`,
  }, async () => {
    const a = await testEchoArchive();
    const b = await testEchoArchive();
    assert.equal(a.digest, b.digest);
    assert.equal(a.repoTag, 'pic-test-echo:1');
  });

  it('tells a static binary from a dynamic one', {
    skip: existsSync(BUSYBOX_STATIC) ? false : `${BUSYBOX_STATIC} is missing: install busybox-static`,
  }, async () => {
    const { readFileSync } = await import('node:fs');
    assert.equal(isStaticElf(readFileSync(BUSYBOX_STATIC)), true);
    assert.equal(isStaticElf(readFileSync(process.execPath)), false, 'node is dynamically linked');
    assert.equal(isStaticElf(Buffer.from('#!/bin/sh\n')), false);
  });
});
