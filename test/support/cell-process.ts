import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO_ROOT = process.env['PIC_REPO_ROOT'] ?? join(import.meta.dirname, '..', '..', '..');
/** What `npm start` runs (packages/cell/launch.json): node with its flags, and the bundle scripts/bundle-cell.mjs makes. */
const launch = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'cell', 'launch.json'), 'utf8')) as {
  main: string;
  nodeFlags: string[];
};
export const CELL_MAIN = join(REPO_ROOT, 'packages', 'cell', launch.main);
export const CELL_ARGS = [...launch.nodeFlags, CELL_MAIN];

export interface CellProcess {
  url: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Stop and remove the data dir. */
  destroy(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a data dir (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  /** Written to <dataDir>/cell.yaml before start. */
  cellYaml?: string;
  env?: Record<string, string>;
  /** How long a start may take before the test fails: generous, a bound on hanging, not a speed goal (CI shares 2 cores). */
  timeoutMs?: number;
  /** Another entry script instead of the bundle (a test entry that passes hooks, e.g. rotation-pause-cell.js). */
  main?: string;
}

/**
 * Resolves with the exit code once the child has exited and its stdout and stderr are read to the
 * end. 'exit' alone can come before the last output is read ('close' comes after), so a test that
 * checks what a process printed on its way out waits for this. A pipe a grandchild still holds
 * would keep 'close' away for good: after 'exit' it is given two seconds.
 */
export function exitedWithOutput(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('exit', (code) => setTimeout(() => resolve(code), 2000).unref());
  });
}

/** Starts the real cell as a separate process on a free port (PIC_PORT=0) and waits until it listens. */
export async function startCellProcess(opts: StartOptions = {}): Promise<CellProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'pic-e2e-'));
  if (opts.cellYaml !== undefined) writeFileSync(join(dataDir, 'cell.yaml'), opts.cellYaml);
  const child = spawn(process.execPath, opts.main ? [...launch.nodeFlags, opts.main] : CELL_ARGS, {
    // WireGuard off unless a test asks for it: parallel cells would otherwise fight over one interface and port.
    // Caddy and the resolver off too: they outlive the cell, and listen on the tunnel's address.
    env: {
      ...process.env,
      PIC_PORT: '0',
      PIC_HOST: '127.0.0.1',
      PIC_DATA_DIR: dataDir,
      PIC_WIREGUARD_MODE: 'off',
      PIC_REACH_MODE: 'off',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = exitedWithOutput(child);

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // do not leave a half-started cell behind
      reject(new Error(`cell did not start in time:\n${out}`));
    }, opts.timeoutMs ?? 40_000);
    const onData = () => {
      const m = /PIC cell listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cell exited with ${code} before listening:\n${out}`));
    });
  });

  let stopped: Promise<number | null> | undefined;
  const stop = () => {
    if (!stopped) {
      if (child.exitCode === null) child.kill('SIGTERM');
      stopped = exited;
    }
    return stopped;
  };
  return {
    url,
    dataDir,
    child,
    output: () => out,
    stop,
    async destroy() {
      await stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs the cell expecting it to fail at start-up; resolves with its exit code and output. */
export async function runCellExpectingFailure(
  opts: StartOptions = {},
): Promise<{ code: number | null; output: string }> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'pic-e2e-'));
  if (opts.cellYaml !== undefined) writeFileSync(join(dataDir, 'cell.yaml'), opts.cellYaml);
  const child = spawn(process.execPath, CELL_ARGS, {
    env: { ...process.env, PIC_PORT: '0', PIC_DATA_DIR: dataDir, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // A cell that starts after all must not hang the test: stop it and report what happened.
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const code = await exitedWithOutput(child);
  clearTimeout(timer);
  if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  return { code, output };
}
