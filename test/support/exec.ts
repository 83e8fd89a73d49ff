import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Runs a tool (ip, wg, curl, …) with an argument array; its stdout, or an error naming the command and its stderr. */
export async function runTool(file: string, args: string[], timeout = 15_000): Promise<string> {
  try {
    return (await execFileP(file, args, { timeout, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * A test's clean-up that goes on past a failing step: `attempt` records what failed in
 * `problems`, which the test asserts empty at the end.
 */
export function cleanupLog() {
  const problems: string[] = [];
  return {
    problems,
    attempt: async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        problems.push(`${what}: ${(err as Error).message}`);
      }
    },
  };
}
