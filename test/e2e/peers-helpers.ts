/**
 * Helpers for the peers end-to-end tests (peers*.test.ts, peer-tunnel.test.ts): a cell set up with
 * a chosen network step, raw (binary) GETs, the wireguard module's own config parser loaded from the
 * cell's build, and direct looks into the cell's database for what the API must have removed.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as WgConfigModule from '../../packages/cell/src/features/wireguard/config.js';
import type * as WgTestingModule from '../../packages/cell/src/features/wireguard/netns.test-support.js';
import { REPO_ROOT, startCellProcess, type StartOptions } from '../support/cell-process.js';
import { ADMIN, ApiClient, IDENTITY, NETWORK } from '../support/client.js';
import { withCellDb } from '../support/db.js';
import type { ReadyCell } from '../support/ready-cell.js';

export type WgConfigApi = typeof WgConfigModule;
export type ParsedWgQuickConfig = WgConfigModule.ParsedWgQuickConfig;

const wireguardDist = (file: string) =>
  pathToFileURL(join(REPO_ROOT, 'packages', 'cell', 'dist', 'features', 'wireguard', file)).href;

/** The wireguard module's config functions (parseWgQuickConfig, renderWgConfig, toWgConfig), from packages/cell/dist. */
export async function loadWgConfig(): Promise<WgConfigApi> {
  return (await import(wireguardDist('config.js'))) as WgConfigApi;
}

/** The wireguard module's test support (namespaces, a peer's wireguard-go), from packages/cell/dist. */
export async function loadWgTesting(): Promise<typeof WgTestingModule> {
  return (await import(wireguardDist('netns.test-support.js'))) as typeof WgTestingModule;
}

export interface NetworkStep {
  wireguard_port: number;
  subnet: string;
  endpoint: string;
}

/**
 * Starts a real cell and walks the wizard with `network` as its network step; the admin client ends
 * signed in with its CSRF token. Login failures are allowed generously (cell.yaml), because these
 * tests sign in with passwords that must fail (deleted, disabled, expired peers) many times from one IP.
 */
export async function startPeersCell(
  opts: StartOptions & { network?: NetworkStep; extraYaml?: string } = {},
): Promise<ReadyCell> {
  const cellYaml =
    opts.cellYaml ?? `rate_limit:\n  login_failures: 1000\n  api_per_minute: 100000\n${opts.extraYaml ?? ''}`;
  const cell = await startCellProcess({ ...opts, cellYaml });
  try {
    const admin = new ApiClient(cell.url);
    for (const body of [ADMIN, IDENTITY, opts.network ?? NETWORK, {}]) {
      const res = await admin.post('/api/setup/step', body);
      if (res.status !== 200) throw new Error(`setup step failed: ${res.status} ${res.text}`);
    }
    const done = await admin.post('/api/setup/complete');
    if (done.status !== 200) throw new Error(`setup complete failed: ${done.status} ${done.text}`);
    await admin.fetchCsrf();
    return { cell, admin, anon: () => new ApiClient(cell.url) };
  } catch (err) {
    await cell.destroy();
    throw err;
  }
}

/** A GET whose body is kept as bytes (PNG), with the client's cookies. */
export async function getBytes(
  api: ApiClient,
  path: string,
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(api.baseUrl + path, { headers: api.cookies.size ? { cookie: api.cookieHeader() } : {} });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The peer's row id (its vault secrets are named after it), or undefined when there is no such peer. */
export function peerId(dataDir: string, name: string): number | undefined {
  return withCellDb(
    dataDir,
    (db) => db.prepare('SELECT id FROM peers WHERE name = ?').get(name)?.id as number | undefined,
  );
}

/** Names of the vault secrets under `prefix` (e.g. `peer/3/`). */
export function vaultSecretNames(dataDir: string, prefix: string): string[] {
  return withCellDb(dataDir, (db) =>
    db
      .prepare('SELECT name FROM vault_secrets WHERE substr(name, 1, length(?)) = ? ORDER BY name')
      .all(prefix, prefix)
      .map((r) => r.name as string),
  );
}

/** Whether a users row with this name exists (a peer's login). */
export function userExists(dataDir: string, username: string): boolean {
  return withCellDb(
    dataDir,
    (db) => db.prepare('SELECT count(*) AS n FROM users WHERE username = ?').get(username).n > 0,
  );
}

/** The scheme of a user's stored password hash (`scrypt`, `sha256`), never the hash itself. */
export function passwordScheme(dataDir: string, username: string): string | undefined {
  const query = 'SELECT password_hash FROM users WHERE username = ?';
  const hash = withCellDb(dataDir, (db) => db.prepare(query).get(username)?.password_hash);
  return (hash as string | undefined)?.split('$')[0];
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
