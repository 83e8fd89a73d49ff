/**
 * Checks the cell runs on demand, each with a time limit: resolve a name (through the cell's own
 * resolver or the system's), reach a URL, and the age of each WireGuard peer's last handshake.
 * A check that fails is an answer (`success: false` with the error), not an HTTP error.
 */
import { Resolver } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';

export interface CheckResult {
  success: boolean;
  took_ms: number;
  error: string | null;
  [detail: string]: unknown;
}

const ms = (start: number) => Math.round((performance.now() - start) * 10) / 10;

export async function resolveCheck(name: string, server: string | undefined, timeoutMs: number): Promise<CheckResult> {
  const start = performance.now();
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (server) resolver.setServers([server]);
  try {
    const addresses = await resolver.resolve4(name);
    return { success: true, took_ms: ms(start), error: null, name, server: server ?? 'system', addresses };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      success: false,
      took_ms: ms(start),
      error: e.code ?? e.message,
      name,
      server: server ?? 'system',
      addresses: [],
    };
  }
}

export async function reachCheck(url: string, timeoutMs: number): Promise<CheckResult> {
  const start = performance.now();
  try {
    const res = await fetch(url, { method: 'GET', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return { success: true, took_ms: ms(start), error: null, url, status: res.status };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const error =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { success: false, took_ms: ms(start), error, url, status: null };
  }
}
