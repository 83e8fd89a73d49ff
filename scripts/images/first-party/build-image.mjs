#!/usr/bin/env node
// SKELETON (not yet run end to end): builds a first-party service image (email, calendar, files)
// without any image registry, from Debian packages:
//   1. debootstrap --variant=minbase --include=<base packages> <suite> <rootfs> <mirror>   (~36 s)
//   2. tar -C <rootfs> -c . | docker import - pic-base-<suite>:<hash>                       (cached by tag)
//   3. docker build --network none -t pic-<service>:<version> <service dir>                  (FROM the base)
//   4. print the image ID (`docker image inspect -f {{.Id}}`): the digest its manifest pins.
// The service's packages go into the base (step 1): `docker build --network none` cannot apt-get.
// Usage: node scripts/images/first-party/build-image.mjs <service dir> [--dry-run]
//   <service dir> holds image.json ({ "tag", "suite", "packages": [...] }) and a Dockerfile whose
//   FROM is the literal ${BASE} build argument (`ARG BASE` / `FROM ${BASE}`).
// Nothing goes through a shell: every step is a child process with an argument array; step 2 pipes
// tar's stdout into docker's stdin. Needs root (debootstrap), debootstrap and a docker CLI.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'dry-run': { type: 'boolean' }, mirror: { type: 'string' } } });
if (positionals.length !== 1) {
  console.error('usage: build-image.mjs <service dir> [--dry-run] [--mirror URL]');
  process.exit(2);
}
const serviceDir = resolve(positionals[0]);
const spec = JSON.parse(readFileSync(join(serviceDir, 'image.json'), 'utf8'));
const suite = spec.suite ?? 'bookworm';
const packages = [...spec.packages].sort();
const mirror = values.mirror ?? debianMirror();
// The base is named by what is in it, so the same package list reuses the same base image.
const baseTag = `pic-base-${suite}:${createHash('sha256').update(packages.join(' ')).digest('hex').slice(0, 12)}`;
const dry = values['dry-run'] ?? false;

function show(cmd, args) {
  console.error(`$ ${[cmd, ...args].join(' ')}`);
}

function run(cmd, args, opts = {}) {
  show(cmd, args);
  if (dry) return Promise.resolve('');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(out.trim()) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/** tar -C dir -c . | docker import - tag, with the pipe made here rather than by a shell. */
function tarIntoImport(dir, tag) {
  show('tar', ['-C', dir, '-c', '.']);
  show('docker', ['import', '-', tag]);
  if (dry) return Promise.resolve();
  return new Promise((resolvePromise, reject) => {
    const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const imp = spawn('docker', ['import', '-', tag], { stdio: ['pipe', 'inherit', 'inherit'] });
    tar.stdout.pipe(imp.stdin);
    let failed = false;
    const fail = (err) => {
      if (!failed) (failed = true), reject(err);
    };
    tar.on('exit', (code) => code !== 0 && fail(new Error(`tar exited with ${code}`)));
    imp.on('exit', (code) => (code === 0 ? !failed && resolvePromise() : fail(new Error(`docker import exited with ${code}`))));
  });
}

function debianMirror() {
  try {
    const sources = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
    const m = /^URIs:\s*(\S+)/m.exec(sources);
    if (m) return m[1];
  } catch {
    // fall through
  }
  return 'http://deb.debian.org/debian';
}

async function imageExists(tag) {
  if (dry) return false;
  try {
    await run('docker', ['image', 'inspect', '-f', '{{.Id}}', tag]);
    return true;
  } catch {
    return false;
  }
}

if (!(await imageExists(baseTag))) {
  const rootfs = mkdtempSync(join(tmpdir(), 'pic-rootfs-'));
  try {
    await run('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, suite, rootfs, mirror]);
    // apt caches and lists are not part of a service image.
    await run('find', [join(rootfs, 'var/cache/apt/archives'), join(rootfs, 'var/lib/apt/lists'), '-mindepth', '1', '-delete']);
    await tarIntoImport(rootfs, baseTag);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}
await run('docker', ['build', '--network', 'none', '--build-arg', `BASE=${baseTag}`, '-t', spec.tag, serviceDir], {
  env: { ...process.env, DOCKER_BUILDKIT: '0' }, // the classic builder: BuildKit would try to resolve the base remotely
});
const digest = await run('docker', ['image', 'inspect', '-f', '{{.Id}}', spec.tag]);
console.log(`${spec.tag} ${dry ? '<digest after a real build>' : digest}`);
