/**
 * Running `wg`, `ip` and `wireguard-go`: execFile/spawn with argument arrays only (no shell), each
 * optionally inside a network namespace through `ip netns exec <ns>`. Output that reaches an error
 * message or a reason is passed through redactKeys first: `wg` echoes a malformed key line back.
 */
import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
// the subpath, not the package: its index loads dockerode (and ssh2's 16 MB WebAssembly heap) at start-up
import { findExecutable } from '@pic/runtime/executable';

/** Linux interface names: at most 15 bytes; we also keep them to plain ASCII that needs no quoting. */
const INTERFACE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,14}$/;
/** Namespace names are files under /run/netns: no slash, no leading dot. */
const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const isInterfaceName = (name: unknown): name is string => typeof name === 'string' && INTERFACE_NAME.test(name);
export const isNetnsName = (name: unknown): name is string => typeof name === 'string' && NETNS_NAME.test(name);

/** Replaces anything shaped like a WireGuard key (44-char base64) so it cannot leak into logs. */
export function redactKeys(text: string): string {
  return text.replace(/[A-Za-z0-9+/]{42,43}=/g, '[redacted key]');
}

/** Last `max` characters of a command's output, trimmed and redacted, for a one-line reason. */
export function outputTail(text: string, max = 400): string {
  const lines = text.split('\n').filter((l) => l.trim() && !/^\s*[┌│└]/.test(l)); // drop wireguard-go's banner box
  const t = redactKeys(lines.map((l) => l.trim()).join(' | '));
  return t.length > max ? `…${t.slice(-max)}` : t;
}

/** The one copy lives in @pic/runtime; re-exported for the wireguard modules. */
export { findExecutable };

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | string | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (${exitCode ?? 'killed'})${stderr ? `: ${outputTail(stderr)}` : ''}`);
    this.name = 'CommandError';
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs executables, inside `netns` when given. Error messages name the command, never its stdout. */
export class CommandRunner {
  constructor(
    readonly netns: string | undefined,
    private readonly ipPath: string | undefined = findExecutable('ip'),
  ) {
    if (netns !== undefined && !isNetnsName(netns))
      throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);
  }

  /** [file, args] for running `path args…`, wrapped in `ip netns exec` when a namespace is set. */
  argv(path: string, args: string[]): [string, string[]] {
    if (this.netns === undefined) return [path, args];
    if (!this.ipPath) throw new Error("the 'ip' command is missing: cannot enter a network namespace");
    return [this.ipPath, ['netns', 'exec', this.netns, path, ...args]];
  }

  /** A short name for messages, e.g. "wg syncconf" (arguments after the verb are left out). */
  private label(path: string, args: string[]): string {
    const base = path.split('/').pop()!;
    return [base, ...args.slice(0, args[0] === '-o' ? 3 : 1)].join(' ') + (this.netns ? ` (netns ${this.netns})` : '');
  }

  run(path: string, args: string[], timeoutMs = 15_000): Promise<CommandResult> {
    const [file, argv] = this.argv(path, args);
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        argv,
        { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) {
            const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
            reject(
              new CommandError(
                this.label(path, args),
                err.killed ? 'timed out' : code,
                stderr || (err.message.includes('ENOENT') ? 'not found' : ''),
              ),
            );
          } else {
            resolve({ stdout, stderr });
          }
        },
      );
      child.stdin?.end(); // nothing reads from us; an open stdin would only keep a stuck child waiting
    });
  }

  /** `detached`: in a session of its own, so that it outlives us and no signal to our group reaches it. */
  spawn(
    path: string,
    args: string[],
    env: Record<string, string> = {},
    opts: { detached?: boolean; stdio?: StdioOptions } = {},
  ): ChildProcess {
    const [file, argv] = this.argv(path, args);
    const stdio = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
    return spawn(file, argv, { stdio, detached: opts.detached ?? false, env: { ...process.env, ...env } });
  }
}
