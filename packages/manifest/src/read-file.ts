/**
 * Reading a catalog file (index, signature bundle, manifest, store key) without trusting what is
 * at its path. TUF's "endless data" and "slow retrieval" attacks, and their local cousins:
 *
 * - only a regular file is read: the path is opened with O_NONBLOCK (a FIFO opens at once, with no
 *   writer, instead of holding a libuv thread until one appears) and O_NOFOLLOW, then fstat'ed, and
 *   a directory, FIFO, socket, device or symbolic link is refused before a byte is read;
 * - the size is checked before reading (fstat), and the read itself stops one byte past the bound,
 *   so a file that grows while it is read is refused too;
 * - every step races a deadline: a file system that stalls fails this read, not the caller.
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export type FileProblem = 'missing' | 'not_regular' | 'too_large' | 'too_slow' | 'unreadable';

export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  constructor(
    readonly problem: FileProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface ReadBoundedOptions {
  /** Larger files are refused (before reading when fstat says so). */
  maxBytes: number;
  /** The whole read, open to close. Default 3 s: catalog files are small and local. */
  timeoutMs?: number;
}

export const DEFAULT_READ_TIMEOUT_MS = 3000;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

/** Reads a regular file of at most `maxBytes`, within the time limit; throws FileReadError otherwise. */
export async function readRegularFile(path: string, opts: ReadBoundedOptions): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const late = () => reject(new FileReadError('too_slow', `took longer than ${timeoutMs} ms to read`));
    timer = setTimeout(late, timeoutMs);
  });
  const opening = open(path, OPEN_FLAGS);
  let handle: FileHandle | undefined;
  try {
    handle = await Promise.race([opening, deadline]);
    return await Promise.race([readOpen(handle, opts.maxBytes), deadline]);
  } catch (err) {
    if (err instanceof FileReadError) {
      // An open that finishes after the deadline must not leak its descriptor.
      if (!handle) opening.then((h) => h.close()).catch(() => undefined);
      throw err;
    }
    throw asFileReadError(err as NodeJS.ErrnoException);
  } finally {
    clearTimeout(timer);
    await handle?.close().catch(() => undefined);
  }
}

async function readOpen(handle: FileHandle, maxBytes: number): Promise<Buffer> {
  const stat = await handle.stat();
  if (!stat.isFile()) throw new FileReadError('not_regular', `is not a regular file (${kindOf(stat)})`);
  if (stat.size > maxBytes) throw new FileReadError('too_large', `is larger than ${maxBytes} bytes (${stat.size})`);
  const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    const grew = () => new FileReadError('too_large', `is larger than ${maxBytes} bytes (it grew while read)`);
    if (length === buffer.length) throw grew();
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length > maxBytes) throw grew();
  }
  return buffer.subarray(0, length);
}

function asFileReadError(err: NodeJS.ErrnoException): FileReadError {
  const code = err.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new FileReadError('missing', `does not exist (${code})`);
  if (code === 'ELOOP')
    return new FileReadError('not_regular', 'is a symbolic link (catalog files must be regular files)');
  if (err.code === 'ENXIO') return new FileReadError('not_regular', 'is not a regular file (a socket or a device)');
  return new FileReadError('unreadable', `cannot be read (${err.code ?? err.message})`);
}

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a file';
}
