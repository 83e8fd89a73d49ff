/** A client of Caddy's admin API on its unix socket (never a TCP port: peers cannot reach it). */
import { request } from 'node:http';

export class CaddyAdminError extends Error {
  override name = 'CaddyAdminError';
}

export const ADMIN_ORIGIN = 'pic-cell';

export function adminRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: {
          Host: ADMIN_ORIGIN,
          ...(payload !== undefined
            ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
            : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 300)
            reject(
              new CaddyAdminError(`caddy admin ${method} ${path}: ${res.statusCode} ${text.trim().slice(0, 300)}`),
            );
          else resolve(text);
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new CaddyAdminError(`caddy admin ${method} ${path}: no answer in ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Resolves once the admin socket answers, or rejects after `timeoutMs`. */
export async function waitForAdmin(socketPath: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      await adminRequest(socketPath, 'GET', '/config/', undefined, 1000);
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new CaddyAdminError(`the admin socket ${socketPath} did not answer in ${timeoutMs} ms: ${String(last)}`);
}
