// `npm start`'s supervisor (scripts/cell-launch.mjs, what run.mjs runs once the build is done),
// started as npm starts a script: under `sh -c`. A SIGTERM to npm reaches that shell, which dies
// without passing it on; the cell must stop cleanly anyway instead of running on with the port.
// The already built cell is used: nothing here rebuilds (the suite reads dist/ and bundle/); the
// `npm start` test runs the real npm script, whose build step finds nothing to do after `npm test`'s
// own build (tsc -b is incremental, and the bundle is skipped when its inputs are unchanged).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exitedWithOutput, REPO_ROOT } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';

const dirs: string[] = [];
const supervisors: number[] = [];
after(() => {
  // should the test fail, leave no cell behind (a supervisor passes SIGTERM on to its cell)
  for (const pid of supervisors) if (alive(pid)) process.kill(pid, 'SIGTERM');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `sh -c argv[0] argv[1…]` with a cell's environment for `dataDir`, as npm runs a script; `out()` is all it printed. */
function shell(argv: string[], dataDir: string) {
  const sh = spawn('/bin/sh', ['-c', ...argv], {
    cwd: REPO_ROOT,
    env: { ...process.env, PIC_PORT: '0', PIC_HOST: '127.0.0.1', PIC_DATA_DIR: dataDir, PIC_WIREGUARD_MODE: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  sh.stdout.on('data', (d: Buffer) => (text += d.toString()));
  sh.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return { sh, out: () => text };
}

/**
 * Waits until the output says the cell listens and matches `pid` (the pid a launcher printed), or
 * fails with the output at `deadline`; resolves with the cell's URL and that pid.
 */
async function started(out: () => string, pid: RegExp, deadline: number, everyMs: number): Promise<[string, string]> {
  for (;;) {
    const url = /PIC cell listening on (http:\/\/\S+)/.exec(out())?.[1];
    const found = pid.exec(out())?.[1];
    if (url && found) return [url, found];
    assert.ok(Date.now() < deadline, `the cell did not start:\n${out()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start supervisor (scripts/cell-launch.mjs)', () => {
  it('stops the cell cleanly when the shell npm started it from is killed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pic-launch-'));
    dirs.push(dataDir);
    const launcher = join(REPO_ROOT, 'scripts', 'cell-launch.mjs');
    // `; echo` keeps sh waiting as the parent (as npm's `sh -c` is), rather than exec'ing node.
    // $! is the supervisor's pid: printed so the test can watch it.
    const { sh, out } = shell(['"$0" "$1" & echo "supervisor $!"; wait; echo', process.execPath, launcher], dataDir);
    const deadline = Date.now() + 15_000;
    const [url, supervisorPid] = await started(out, /supervisor (\d+)/, deadline, 20);
    const supervisor = Number(supervisorPid);
    supervisors.push(supervisor);
    const admin = new ApiClient(url);
    await completeSetup(admin); // writes: the WAL has something to fold back
    assert.ok(existsSync(join(dataDir, 'cell.db-wal')));

    sh.kill('SIGTERM'); // what the shell under npm gets; it does not pass it on
    while (alive(supervisor)) {
      assert.ok(Date.now() < deadline + 15_000, `the supervisor is still running after its parent died:\n${out()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(out(), /the process that started the cell \(pid \d+\) is gone: stopping the cell/);
    assert.match(out(), /"msg":"stopping","signal":"SIGTERM"/);
    assert.ok(!existsSync(join(dataDir, 'cell.db-wal')), `the database was closed:\n${out()}`);
    await assert.rejects(fetch(`${url}/health`), 'nothing listens on the port any more');
  });
});

describe('npm start (the real npm script)', () => {
  it('kill -INT <pid of npm start> stops the cell as SIGTERM does', async (t) => {
    const npm = ['/usr/bin/npm', '/usr/local/bin/npm'].find((p) => existsSync(p));
    if (!npm) return t.skip('npm is not installed where this test looks (/usr/bin, /usr/local/bin)');
    const script = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts.start as string;
    // the cause: npm passes SIGINT to the `sh -c` it runs the script in, and a shell waiting for a
    // command ignores SIGINT; `exec` makes our supervisor the process npm signals
    assert.match(script, /^exec node scripts\/run\.mjs start$/);
    const dataDir = mkdtempSync(join(tmpdir(), 'pic-npm-start-'));
    dirs.push(dataDir);
    // Started in the background of a non-interactive shell, as `npm start &` in a script is: such a
    // job starts with SIGINT ignored, which every process under it inherits unless it sets a handler.
    const { sh, out } = shell(['"$0" start & echo "npm $!"; wait', npm], dataDir);
    const shExited = exitedWithOutput(sh);
    const deadline = Date.now() + 90_000; // npm start checks the build first (nothing to do, but tsc -b reads it all)
    const [url, npmPidText] = await started(out, /npm (\d+)/, deadline, 50);
    const npmPid = Number(npmPidText);
    supervisors.push(npmPid);
    const admin = new ApiClient(url);
    await completeSetup(admin);
    assert.ok(existsSync(join(dataDir, 'cell.db-wal')));

    process.kill(npmPid, 'SIGINT'); // to that one pid, not to its process group
    const stopDeadline = Date.now() + 20_000;
    while (alive(npmPid)) {
      assert.ok(Date.now() < stopDeadline, `npm start is still running 20 s after SIGINT:\n${out()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await shExited;
    assert.match(out(), /"msg":"stopping","signal":"SIGINT"/);
    assert.ok(!existsSync(join(dataDir, 'cell.db-wal')), `the database was closed:\n${out()}`);
    await assert.rejects(fetch(`${url}/health`), 'nothing listens on the port any more');
  });
});

describe('npm start checks the system parts the cell needs (scripts/cell-system.mjs)', () => {
  const launcher = join(REPO_ROOT, 'scripts', 'cell-launch.mjs');
  /** The launcher with a PATH on which neither wg, wireguard-go nor apt-get can be found. */
  const launch = async (env: Record<string, string>) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pic-syscheck-'));
    dirs.push(dataDir);
    const emptyPath = mkdtempSync(join(tmpdir(), 'pic-empty-path-'));
    dirs.push(emptyPath);
    const child = spawn(process.execPath, [launcher], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: emptyPath, PIC_PORT: '0', PIC_HOST: '127.0.0.1', PIC_DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // a cell that starts: stop it once it listens
    const poll = setInterval(() => {
      if (/PIC cell listening/.test(out)) {
        clearInterval(poll);
        child.kill('SIGTERM');
      }
    }, 50);
    child.once('exit', () => clearInterval(poll));
    const code = await exitedWithOutput(child);
    return { code, out };
  };

  it('refuses a cell whose VPN tools are missing, naming them and the command that installs them', async () => {
    const checkOnly = await launch({ PIC_SYSTEM_INSTALL: 'no' });
    assert.equal(checkOnly.code, 1, checkOnly.out);
    assert.match(checkOnly.out, /the VPN needs wireguard-tools, wireguard-go, which are not installed/);
    assert.match(checkOnly.out, /install: sudo apt-get install --no-install-recommends wireguard-tools wireguard-go/);
    assert.match(checkOnly.out, /PIC_WIREGUARD_MODE=off npm start/);
    assert.doesNotMatch(checkOnly.out, /PIC cell listening/);

    // installing is tried (as root), and its failure is part of the message
    const installing = await launch({});
    assert.equal(installing.code, 1, installing.out);
    assert.match(installing.out, /installing failed: (not root|apt-get install wireguard-tools wireguard-go failed)/);
  });

  it('starts a cell configured without a VPN without checking for it', async () => {
    const off = await launch({ PIC_SYSTEM_INSTALL: 'no', PIC_WIREGUARD_MODE: 'off' });
    assert.match(off.out, /WireGuard is off \(mode "off"\): the cell starts without its VPN/);
    assert.match(off.out, /PIC cell listening/);
    assert.equal(off.code, 0, off.out);
  });
});

describe("npm start's build leaves the running suite's bundle alone (scripts/bundle-cell.mjs)", () => {
  interface BundleScript {
    CELL_BUNDLE_DIR: string;
    bundleIsCurrent(): boolean;
    inputsHash(files: string[]): string | undefined;
  }
  const load = async (): Promise<BundleScript> =>
    (await import(pathToFileURL(join(REPO_ROOT, 'scripts', 'bundle-cell.mjs')).href)) as BundleScript;

  it('records exactly the files esbuild read: no console build, no test code', async () => {
    const { CELL_BUNDLE_DIR, bundleIsCurrent } = await load();
    const { files } = JSON.parse(readFileSync(join(CELL_BUNDLE_DIR, '.inputs.json'), 'utf8')) as { files: string[] };
    assert.ok(files.includes('packages/cell/dist/main.js'), 'the entry point is an input');
    assert.deepEqual(
      files.filter((f) => f.startsWith('packages/console/') || /\.test(-support)?\.js$/.test(f)),
      [],
    );
    assert.equal(bundleIsCurrent(), true, 'after the build, the bundle is current: npm start will not rewrite it');
  });

  it('a file the bundle did not read (a console build output) leaves it current; one it read does not', async () => {
    const { bundleIsCurrent, inputsHash } = await load();
    // Once, the console's dist/ (built after the bundle on a fresh clone) was hashed too: the
    // launcher test's `npm start` re-bundled and deleted chunks under other tests' cells.
    const stray = join(REPO_ROOT, 'packages', 'console', 'dist', `stray-${process.pid}.js`);
    writeFileSync(stray, 'export {};\n');
    try {
      assert.equal(bundleIsCurrent(), true);
    } finally {
      rmSync(stray, { force: true });
    }
    const dir = mkdtempSync(join(tmpdir(), 'pic-bundle-inputs-'));
    dirs.push(dir);
    const input = join(dir, 'module.js');
    writeFileSync(input, 'export const a = 1;\n');
    const before = inputsHash([input]);
    writeFileSync(input, 'export const a = 2;\n');
    assert.notEqual(inputsHash([input]), before, 'a changed input changes the hash');
    rmSync(input);
    assert.equal(inputsHash([input]), undefined, 'a missing input is never current');
  });
});
