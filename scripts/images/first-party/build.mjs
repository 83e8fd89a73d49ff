// Builds the first-party service images (email, calendar, files) without any image registry, from
// Debian 12 packages (see wiki/dev-build-a-store-service.md):
//   1. debootstrap --variant=minbase --include=<base.json packages> bookworm <rootfs> <mirror>
//   2. tar -C <rootfs> -c . | docker import - pic/base:<hash>           (once, shared by all three)
//   3. docker build --network none -t pic/<service>:<hash> <service dir>  (FROM the base, config only)
// Both tags carry a hash of their recipe (base.json; base tag + every file of the service dir), so
// an image that exists already is not built again: a second run is a no-op.
// Nothing goes through a shell: every step is a child process with an argument array. Needs root
// (debootstrap), debootstrap and a docker CLI; the engine is the one DOCKER_HOST names.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIRST_PARTY_DIR = dirname(fileURLToPath(import.meta.url));
export const SERVICES = ['calendar', 'email', 'files'];

/** Lines of debootstrap's output shown when it fails. */
const TAIL_LINES = 40;

/** What is missing on this machine to build images, or undefined when nothing is. */
export function buildProblem() {
  if (process.getuid?.() !== 0) return 'building first-party images needs root (debootstrap)';
  const onPath = (cmd) => (process.env.PATH ?? '/usr/sbin:/usr/bin').split(':').some((d) => existsSync(join(d, cmd)));
  if (!onPath('debootstrap') && !existsSync('/usr/sbin/debootstrap'))
    return 'debootstrap is not installed (apt-get install debootstrap)';
  if (!onPath('docker')) return 'the docker CLI is not installed (apt-get install docker.io)';
  return undefined;
}

function serviceDirOf(service) {
  if (SERVICES.includes(service)) return join(FIRST_PARTY_DIR, service);
  const dir = resolve(service);
  if (!existsSync(join(dir, 'Dockerfile')))
    throw new Error(`unknown service "${service}": one of ${SERVICES.join(', ')} or a directory with a Dockerfile`);
  return dir;
}

function filesOf(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...filesOf(full));
    else out.push(full);
  }
  return out;
}

export function readBaseSpec() {
  return JSON.parse(readFileSync(join(FIRST_PARTY_DIR, 'base.json'), 'utf8'));
}

/** The base image's tag: named by what is in it. */
export function baseTag(spec = readBaseSpec()) {
  const recipe = JSON.stringify({ suite: spec.suite, packages: [...spec.packages].sort(), prune: spec.prune });
  return `pic/base:${createHash('sha256').update(recipe).digest('hex').slice(0, 16)}`;
}

/** A service image's tag: a hash of the base's tag and every file (path, mode, bytes) of the service's recipe. */
export function serviceTag(service) {
  const dir = serviceDirOf(service);
  const h = createHash('sha256').update(baseTag());
  for (const f of filesOf(dir)) {
    h.update(`\0${relative(dir, f)}\0${statSync(f).mode & 0o777}\0`);
    h.update(readFileSync(f));
  }
  return `pic/${basename(dir)}:${h.digest('hex').slice(0, 16)}`;
}

function debianMirror() {
  try {
    const m = /^URIs:\s*(\S+)/m.exec(readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8'));
    if (m) return m[1];
  } catch {
    // no deb822 sources: the default mirror
  }
  return 'http://deb.debian.org/debian';
}

function run(cmd, args, { env, log, capture } = {}) {
  log?.(`$ ${[cmd, ...args].join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (capture) capture.write(d);
    });
    child.stderr.on('data', (d) => {
      err += d;
      if (capture) capture.write(d);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) return resolvePromise(out.trim());
      const tail = `${out}${err}`.trim().split('\n').slice(-TAIL_LINES).join('\n');
      reject(new Error(`${cmd} exited with ${code}; the last lines of its output:\n${tail}`));
    });
  });
}

/** tar -C dir -c . | docker import - tag, the pipe made here rather than by a shell. */
function tarIntoImport(dir, tag, env, log) {
  log?.(`$ tar -C ${dir} -c . | docker import - ${tag}`);
  return new Promise((resolvePromise, reject) => {
    const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const imp = spawn('docker', ['import', '-', tag], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let err = '';
    tar.stderr.on('data', (d) => (err += d));
    imp.stderr.on('data', (d) => (err += d));
    imp.stdout.resume();
    tar.stdout.pipe(imp.stdin);
    let failed = false;
    const fail = (e) => {
      if (!failed) {
        failed = true;
        reject(e);
      }
    };
    tar.on('exit', (code) => code !== 0 && fail(new Error(`tar exited with ${code}: ${err.trim()}`)));
    imp.on('exit', (code) =>
      code === 0 ? !failed && resolvePromise() : fail(new Error(`docker import exited with ${code}: ${err.trim()}`)),
    );
  });
}

async function imageId(tag, env) {
  try {
    return await run('docker', ['image', 'inspect', '-f', '{{.Id}}', tag], { env });
  } catch {
    return undefined;
  }
}

/** One build at a time on this machine (a directory lock; a holder that died is taken over). */
async function withLock(fn, log) {
  const lock = join(tmpdir(), 'pic-first-party-build.lock');
  for (let waited = 0; ; waited += 500) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = 0;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
        process.kill(holder, 0);
      } catch {
        if (holder) rmSync(lock, { recursive: true, force: true });
        else if (waited > 5_000) rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (waited % 30_000 === 0) log?.(`waiting for another image build (pid ${holder})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function ensureBase(env, log) {
  const spec = readBaseSpec();
  const tag = baseTag(spec);
  if (await imageId(tag, env)) return tag;
  const rootfs = mkdtempSync(join('/var/tmp', 'pic-rootfs-'));
  const started = Date.now();
  try {
    log?.(`building the base ${tag} with debootstrap (about a minute)`);
    const args = [
      '--variant=minbase',
      `--include=${[...spec.packages].sort().join(',')}`,
      spec.suite,
      rootfs,
      debianMirror(),
    ];
    await run('debootstrap', args, { log });
    for (const p of spec.prune ?? []) {
      const full = join(rootfs, p);
      if (!existsSync(full)) continue;
      // A directory is emptied (packages expect it to exist), a file removed.
      if (!statSync(full).isDirectory()) rmSync(full, { force: true });
      else for (const entry of readdirSync(full)) rmSync(join(full, entry), { recursive: true, force: true });
    }
    await tarIntoImport(rootfs, tag, env, log);
    log?.(`base ${tag} built in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  return tag;
}

/**
 * Builds one first-party image (or finds it built) in the engine at `dockerHost` (default: the
 * DOCKER_HOST of this process). Returns { service, image, id }: id is the image ID the manifests pin.
 */
export async function buildFirstPartyImage(service, { dockerHost, log } = {}) {
  const dir = serviceDirOf(service);
  const name = basename(dir);
  const problem = buildProblem();
  if (problem) throw new Error(problem);
  const env = {
    ...process.env,
    ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}),
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };
  const tag = serviceTag(service);
  const found = await imageId(tag, env);
  if (found) return { service: name, image: tag, id: found };
  return withLock(async () => {
    const again = await imageId(tag, env);
    if (again) return { service: name, image: tag, id: again };
    const base = await ensureBase(env, log);
    // The classic builder: BuildKit would try to resolve the imported base remotely.
    await run('docker', ['build', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', tag, dir], { env, log });
    const id = await imageId(tag, env);
    if (!id) throw new Error(`docker build finished but ${tag} is not in the engine`);
    return { service: name, image: tag, id };
  }, log);
}
