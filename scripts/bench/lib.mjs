// Shared helpers for bench sections: child processes that are always cleaned up, temp dirs,
// free ports, /proc readings, small statistics and a plain-HTTP JSON client.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cellLaunch } from '../cell-launch.mjs';

/**
 * Everything a section starts registers its undo here; index.mjs runs them (newest first) when the
 * run ends, fails or is interrupted. A section may also call `cleanup.run(fn)` early itself.
 */
export class Cleanup {
  #tasks = [];

  /** Registers `fn`; returns a function that runs it now (once) and unregisters it. */
  add(fn) {
    let done = false;
    const once = async () => {
      if (done) return;
      done = true;
      this.#tasks = this.#tasks.filter((t) => t !== once);
      await fn();
    };
    this.#tasks.push(once);
    return once;
  }

  async runAll() {
    const errors = [];
    while (this.#tasks.length) {
      const task = this.#tasks[this.#tasks.length - 1];
      try {
        await task();
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }
}

export function tempDir(cleanup, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, remove };
}

/** A port nobody listens on right now (the kernel picks it; a tiny race with other programs remains). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let tasksetPath;
/** /usr/bin/taskset (util-linux) when present and working here, else undefined. */
export function taskset() {
  if (tasksetPath === undefined) {
    tasksetPath = '';
    for (const candidate of ['/usr/bin/taskset', '/bin/taskset']) {
      try {
        execFileSync(candidate, ['-p', String(process.pid)], { stdio: 'ignore' });
        tasksetPath = candidate;
        break;
      } catch {
        // not here
      }
    }
  }
  return tasksetPath || undefined;
}

/**
 * Pins every thread of process `pid` to `cpus` (a taskset list such as "0" or "1-3"); returns
 * whether it worked. Without taskset nothing is pinned.
 */
export function pinProcess(pid, cpus) {
  const bin = taskset();
  if (!bin) return false;
  try {
    execFileSync(bin, ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Spawns `node <args>`, collecting its output. `stop()` sends SIGTERM, waits up to `graceMs`, then
 * SIGKILLs; it is registered with `cleanup`, so the child never outlives the bench. With `cpus`
 * (a taskset list) and taskset present, the child runs pinned to those cores (taskset execs node,
 * so the pid is node's).
 */
export function spawnNode(cleanup, args, { env = {}, cwd, graceMs = 5000, cpus } = {}) {
  const pinned = cpus !== undefined && taskset() !== undefined;
  const child = spawn(pinned ? taskset() : process.execPath, pinned ? ['-c', cpus, process.execPath, ...args] : args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = cleanup.add(async () => {
    if (!running()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => running() && child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  });
  return { child, pid: child.pid, output: () => out, exited, running, stop };
}

/** Resolves with the first match of `re` in the child's output, or rejects when it exits or times out. */
export function waitForOutput(proc, re, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    let finished = false;
    const finish = (settle, value) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      proc.child.stdout.off('data', check);
      proc.child.stderr.off('data', check);
      settle(value);
    };
    const check = () => {
      const m = re.exec(proc.output());
      if (m) finish(resolve, m);
    };
    const timer = setTimeout(
      () => finish(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${re}:\n${proc.output()}`)),
      timeoutMs,
    );
    proc.child.stdout.on('data', check);
    proc.child.stderr.on('data', check);
    proc.exited.then(({ code, signal }) => {
      check();
      finish(reject, new Error(`process exited (${code ?? signal}) before printing ${re}:\n${proc.output()}`));
    });
    check();
  });
}

/** One `/proc/<pid>/status` memory field (VmRSS, VmHWM, …) in bytes. */
export function procStatusBytes(pid, field) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

let clockTicks;
/** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
export function procCpuSeconds(pid) {
  clockTicks ??= (() => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name (which is in parentheses and may contain spaces)
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / clockTicks;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The spread of a set of figures: its lowest and highest. */
export function spread(values) {
  return { min: Math.min(...values), max: Math.max(...values) };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** One HTTP/1.1 request (no keep-alive) → { status, headers, body (parsed JSON or text) }. */
export function httpJson(baseUrl, method, path, { json, headers = {}, timeoutMs = 10_000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = request(
      new URL(path, baseUrl),
      {
        method,
        agent: false,
        localAddress,
        timeout: timeoutMs,
        headers: {
          ...headers,
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** node's arguments for the cell as `npm start` runs it (packages/cell/launch.json): its flags, then its bundle. */
export function cellArgs(root) {
  const { nodeFlags, main } = cellLaunch(root);
  return [...nodeFlags, main];
}
