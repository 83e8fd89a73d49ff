import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { DockerRuntime } from '../docker-runtime.js';
import { EngineError } from '../errors.js';
import { buildImageArchive, type ImageArchive, type ImageConfig, type ImageEntry } from './archive.js';

const execFileAsync = promisify(execFile);

/** The tag the test service image is loaded under. */
export const TEST_ECHO_IMAGE = 'pic-test-echo:1';
/** Where Debian's busybox-static package puts its binary (scripts/system/docker.mjs installs it). */
export const BUSYBOX_STATIC = '/bin/busybox';

const REPO_ROOT = process.env['PIC_REPO_ROOT'] ?? join(import.meta.dirname, '..', '..', '..', '..');
/** The image's own files and config, kept with the other image build scripts. */
export const TEST_ECHO_SOURCE = join(REPO_ROOT, 'scripts', 'images', 'test-echo');

interface TestEchoSource {
  repoTag: string;
  dirs: Record<string, string>;
  config: ImageConfig;
}

export interface TestEchoOptions {
  /** A statically linked busybox; BUSYBOX_STATIC when omitted. */
  busybox?: string;
  /** Directory with image.json and rootfs/; TEST_ECHO_SOURCE when omitted. */
  sourceDir?: string;
  log?: (msg: string) => void;
  /** Files added to the image: a variant with its own layer and digest (registry tests). */
  extraEntries?: ImageEntry[];
  /** The tag it is loaded under; TEST_ECHO_IMAGE (from image.json) when omitted. */
  repoTag?: string;
}

/**
 * The test-echo image as a deterministic `docker save` archive: a static busybox with its applets
 * linked in /bin, plus scripts/images/test-echo/rootfs (httpd server, CGI, pic-account). Same
 * busybox + same files → same digest, on any machine.
 */
export async function testEchoArchive(options: TestEchoOptions = {}): Promise<ImageArchive> {
  const busyboxPath = options.busybox ?? BUSYBOX_STATIC;
  const sourceDir = options.sourceDir ?? TEST_ECHO_SOURCE;
  const busybox = await readFile(busyboxPath).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      `${busyboxPath} is missing (${err.code}): install Debian's busybox-static (scripts/system/docker.mjs does)`,
    );
  });
  if (!isStaticElf(busybox)) {
    throw new Error(`${busyboxPath} is not a statically linked ELF binary: install busybox-static, not busybox`);
  }
  const { stdout } = await execFileAsync(busyboxPath, ['--list']);
  const applets = stdout
    .split('\n')
    .map((a) => a.trim())
    .filter((a) => a && a !== 'busybox' && !a.includes('/'));

  const source = JSON.parse(await readFile(join(sourceDir, 'image.json'), 'utf8')) as TestEchoSource;
  const entries: ImageEntry[] = [
    { type: 'file', path: 'bin/busybox', content: busybox, mode: 0o755 },
    ...applets.map((a): ImageEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    ...Object.entries(source.dirs).map(([path, mode]): ImageEntry => ({ type: 'dir', path, mode: parseInt(mode, 8) })),
    ...(await filesUnder(join(sourceDir, 'rootfs'))),
    ...(options.extraEntries ?? []),
  ];
  return buildImageArchive({ repoTag: options.repoTag ?? source.repoTag, entries, config: source.config });
}

/**
 * Makes sure the engine has the test-echo image (tag TEST_ECHO_IMAGE) and returns its digest, the
 * image ID `sha256:…` the cell pins. Idempotent and cached: when the tag already points at the
 * digest these files produce, nothing is loaded. Safe to call from parallel test processes, since
 * the same inputs always give the same image.
 */
export async function buildTestEchoImage(
  runtimeOrSocket: DockerRuntime | string,
  options: TestEchoOptions = {},
): Promise<string> {
  const runtime =
    typeof runtimeOrSocket === 'string'
      ? new DockerRuntime({ cellId: 'pic-image-builder', socket: runtimeOrSocket })
      : runtimeOrSocket;
  const log = options.log ?? (() => {});
  const started = Date.now();
  const built = await testEchoArchive(options);
  const present = await runtime.inspectImage(built.repoTag);
  if (present?.digest === built.digest) {
    log(`${built.repoTag} is cached on the engine (${built.digest})`);
    return built.digest;
  }
  await runtime.loadImage(built.archive);
  const loaded = await runtime.imageDigest(built.repoTag);
  if (loaded !== built.digest) {
    throw new EngineError(
      `engine ${runtime.endpoint} reports ${built.repoTag} as ${loaded}, but the archive's config digest is ${built.digest}`,
      undefined,
    );
  }
  log(
    `${built.repoTag} loaded in ${Date.now() - started} ms (${(built.archive.length / 1e6).toFixed(1)} MB, ${built.digest})`,
  );
  return built.digest;
}

/**
 * A test-echo image of its own: the same service plus a file holding `marker`, so it has a layer and
 * an image ID no other test shares (a test may delete it from the engine without disturbing others).
 * Loaded under `repoTag`; returns its image ID.
 */
export async function buildTestEchoVariant(
  runtimeOrSocket: DockerRuntime | string,
  marker: string,
  repoTag: string,
  options: TestEchoOptions = {},
): Promise<string> {
  const runtime =
    typeof runtimeOrSocket === 'string'
      ? new DockerRuntime({ cellId: 'pic-image-builder', socket: runtimeOrSocket })
      : runtimeOrSocket;
  const extraEntries: ImageEntry[] = [{ type: 'file', path: 'etc/pic-variant', content: `${marker}\n`, mode: 0o644 }];
  const built = await testEchoArchive({ ...options, repoTag, extraEntries });
  await runtime.loadImage(built.archive);
  const loaded = await runtime.imageDigest(repoTag);
  if (loaded !== built.digest) {
    const why = `engine ${runtime.endpoint} reports ${repoTag} as ${loaded}, but the archive's config digest is ${built.digest}`;
    throw new EngineError(why, undefined);
  }
  return built.digest;
}

/** Files and symlinks of a directory tree, as image entries; modes are normalised to 0644/0755. */
async function filesUnder(root: string): Promise<ImageEntry[]> {
  const out: ImageEntry[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const full = join(entry.parentPath, entry.name);
    const path = relative(root, full);
    if (entry.isDirectory()) out.push({ type: 'dir', path, mode: 0o755 });
    else if (entry.isFile()) {
      // Only the executable bit survives git; normalise the rest so the digest does not follow the umask.
      const executable = ((await stat(full)).mode & 0o111) !== 0;
      out.push({ type: 'file', path, content: await readFile(full), mode: executable ? 0o755 : 0o644 });
    }
  }
  return out;
}

/** True for an ELF executable without a PT_INTERP program header (no dynamic loader needed). */
export function isStaticElf(bin: Buffer): boolean {
  if (bin.length < 64 || bin.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = bin[4] === 2;
  const le = bin[5] === 1;
  const u16 = (o: number) => (le ? bin.readUInt16LE(o) : bin.readUInt16BE(o));
  const u32 = (o: number) => (le ? bin.readUInt32LE(o) : bin.readUInt32BE(o));
  const phoff = is64 ? Number(le ? bin.readBigUInt64LE(0x20) : bin.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > bin.length) return false;
    if (u32(off) === 3) return false; // PT_INTERP
  }
  return true;
}
