/**
 * Helpers for the vault's end-to-end tests: the age library and openssl, used independently of the
 * cell to check what it wrote, and a client that keeps every response it received.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/cell-process.js';
import { ApiClient, type ApiResponse } from '../support/client.js';
import { withCellDb } from '../support/db.js';

const run = promisify(execFile);

/** The slice of age-encryption (a dependency of the cell package) these tests use. */
export interface Age {
  Encrypter: new () => { addRecipient(r: string): void; encrypt(data: string | Uint8Array): Promise<Uint8Array> };
  Decrypter: new () => { addIdentity(i: string): void; decrypt(data: Uint8Array, format: 'text'): Promise<string> };
  identityToRecipient(identity: string): Promise<string>;
}

export async function loadAge(): Promise<Age> {
  const resolved = createRequire(join(REPO_ROOT, 'packages', 'cell', 'package.json')).resolve('age-encryption');
  return (await import(pathToFileURL(resolved).href)) as Age;
}

/** The identity in `<dataDir>/<file>` (age-keygen format). */
export function readIdentity(dataDir: string, file = 'vault.key'): string {
  const line = readFileSync(join(dataDir, file), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
  if (!line) throw new Error(`no identity in ${file}`);
  return line.trim();
}

export interface SecretRow {
  name: string;
  ciphertext: Buffer;
  recipient: string;
}

export function secretRows(dataDir: string): SecretRow[] {
  return withCellDb(
    dataDir,
    (db) => db.prepare('SELECT name, ciphertext, recipient FROM vault_secrets ORDER BY name').all() as SecretRow[],
  );
}

/** Decrypts every secret in the database with nothing but the key file: what the cell could read back. */
export async function decryptAll(age: Age, dataDir: string): Promise<Map<string, string>> {
  const decrypter = new age.Decrypter();
  decrypter.addIdentity(readIdentity(dataDir));
  const out = new Map<string, string>();
  for (const row of secretRows(dataDir))
    out.set(row.name, await decrypter.decrypt(new Uint8Array(row.ciphertext), 'text'));
  return out;
}

export async function openssl(...args: string[]): Promise<string> {
  return (await run('openssl', args)).stdout;
}

/** Runs openssl expecting it to fail; resolves with what it printed. */
export async function opensslFails(...args: string[]): Promise<string> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  throw new Error(`openssl ${args.join(' ')} succeeded`);
}

/** `openssl verify` of `certPem` against the CA in `caFile` (and the CRL in `crlFile`, if given): its output. */
export function verifyCert(dir: string, caFile: string, certPem: string, crlFile?: string): Promise<string> {
  const crl = crlFile ? ['-crl_check', '-CRLfile', crlFile] : [];
  return openssl('verify', ...crl, '-CAfile', caFile, tempFile(dir, 'cert.pem', certPem));
}

let fileCount = 0;
export function tempFile(dir: string, name: string, text: string): string {
  const path = join(dir, `${++fileCount}-${name}`);
  writeFileSync(path, text);
  return path;
}

/** An ApiClient that keeps every response, so a test can search all of them for leaked secrets. */
export class RecordingClient extends ApiClient {
  readonly seen: Array<{ method: string; path: string; res: ApiResponse }> = [];

  override async request<T = any>(
    method: string,
    path: string,
    opts: Parameters<ApiClient['request']>[2] = {},
  ): Promise<ApiResponse<T>> {
    const res = await super.request<T>(method, path, opts);
    this.seen.push({ method, path, res });
    return res;
  }
}
