import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname } from 'node:path';

/** The cell's age identity, and the next one while a rotation is in flight (both in the data dir). */
export const KEY_FILE = 'vault.key';
export const NEXT_KEY_FILE = 'vault.key.next';
/** First creation writes here, then renames, so `vault.key` is never half-written. */
export const NEW_KEY_FILE = 'vault.key.new';

/** A refusal at start-up (or a broken invariant): the message says what is wrong and how to fix it. */
export class VaultError extends Error {
  override name = 'VaultError';
}

const IDENTITY_LINE = /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/;

/** The file in the format of `age-keygen`, so `age -d -i vault.key` can use it too. */
export function keyFileText(identity: string, recipient: string, created = new Date()): string {
  return `# created: ${created.toISOString()}\n# public key: ${recipient}\n${identity}\n`;
}

export function parseKeyFile(text: string, path: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1 || !IDENTITY_LINE.test(lines[0]!)) {
    throw new VaultError(`${path} is not an age identity file (expected one AGE-SECRET-KEY-1… line)`);
  }
  return lines[0]!;
}

/**
 * Reads an identity file, refusing one that others could read: a key that was readable by other
 * users may have been copied, so the cell stops rather than silently tightening it.
 * Returns undefined when the file does not exist.
 */
export function readKeyFile(path: string): string | undefined {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!stat.isFile()) throw new VaultError(`${path} is not a regular file`);
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new VaultError(
      `${path} has mode ${mode.toString(8).padStart(4, '0')}: the vault key must be readable by its owner only (0600). ` +
        `If nobody else can have read it, run "chmod 600 ${path}" and start again; otherwise start the cell and rotate the key (POST /api/vault/rotate).`,
    );
  }
  return parseKeyFile(readFileSync(path, 'utf8'), path);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` afresh with mode 0600 (never widening an existing file's mode) and fsyncs it and its directory. */
export function writeKeyFileDurably(path: string, text: string): void {
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dirname(path));
}

/** rename(2) is atomic: a reader sees the old file or the new one, never a mix. */
export function replaceDurably(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}
