import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Logger } from '../../lib/logger.js';

/**
 * The top-level paths of the console's own screens: only these fall back to index.html (the
 * console routes them in the browser). Everything else that is not a built file is a 404, and
 * /api/* and /health never reach this module at all.
 */
export const CONSOLE_SCREENS = [
  'setup',
  'login',
  'change-password',
  'dashboard',
  'peers',
  'store',
  'vault',
  'audit',
  'users',
  'portal',
] as const;

/**
 * The console's Content-Security-Policy: scripts and styles only from the cell's own files (no
 * inline script, no eval, no inline style element), images from itself (QR codes) and data: URLs,
 * requests only to itself, and no framing.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.woff2': 'font/woff2',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.txt', '.webmanifest']);

export interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
  /** Built with a content hash in its name (Vite's assets/): cached for a year, never revalidated. */
  immutable: boolean;
  /** The gzip-compressed body when it is worth it: the build's own `.gz`, or made at start. */
  gzipped: Buffer | undefined;
}

/** The built console, read into memory at start (a few hundred KB): index.html and assets/. */
export class ConsoleAssets {
  private files = new Map<string, ConsoleFile>();
  private reason: string | undefined = 'not started';

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.files.clear();
    this.reason = undefined;
    try {
      const read = new Map<string, Buffer>();
      for (const full of walk(this.dir)) read.set(relative(this.dir, full).split(sep).join('/'), readFileSync(full));
      for (const [rel, body] of read) {
        if (rel.endsWith('.gz') && read.has(rel.slice(0, -3))) continue; // served as its file's gzip encoding
        this.files.set(rel, makeFile(rel, body, read.get(`${rel}.gz`)));
      }
    } catch (err) {
      this.files.clear();
      this.reason = `cannot read ${this.dir}: ${(err as Error).message}`;
    }
    if (this.files.size > 0 && !this.files.has('index.html')) {
      this.files.clear();
      this.reason = `${this.dir} has no index.html`;
    }
    if (this.files.size === 0) {
      this.reason ??= `${this.dir} is empty`;
      this.logger.warn('console: not built, / answers 503 (run npm run build)', { dir: this.dir, reason: this.reason });
    } else {
      this.reason = undefined;
      this.logger.debug('console: ready', { dir: this.dir, files: this.files.size });
    }
  }

  stop(): void {
    this.files.clear();
    this.reason = 'stopped';
  }

  /** Why the console cannot be served, or undefined when it can. */
  get unavailable(): string | undefined {
    return this.reason;
  }

  /**
   * The file a browser path names: a built file, index.html for `/` and for the console's
   * screens (SPA fallback), or undefined (→ 404). Paths are decoded once and never leave the map.
   */
  resolve(path: string): ConsoleFile | undefined {
    if (path === '/' || path === '/index.html') return this.files.get('index.html');
    const rel = path.slice(1);
    const file = this.files.get(rel);
    if (file) return file;
    return isScreenPath(path) ? this.files.get('index.html') : undefined;
  }
}

/** A console screen's path: its first segment is a screen, and its last has no file extension. */
export function isScreenPath(path: string): boolean {
  const segments = path.split('/').filter(Boolean);
  const first = segments[0]?.toLowerCase();
  if (!first || !(CONSOLE_SCREENS as readonly string[]).includes(first)) return false;
  return !segments.at(-1)!.includes('.');
}

/**
 * One served file. Its gzip encoding is ready before the first request (a cold first load must not
 * wait for level-9 compression of the bundle): the build's precompressed `.gz` when it matches the
 * file, else compressed here once.
 */
function makeFile(rel: string, body: Buffer, prebuilt: Buffer | undefined): ConsoleFile {
  const ext = extname(rel).toLowerCase();
  let gzipped: Buffer | undefined;
  if (COMPRESSIBLE.has(ext) && body.length > 1024) {
    gzipped = prebuilt && matches(prebuilt, body) ? prebuilt : gzipSync(body, { level: 9 });
  }
  return {
    body,
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    immutable: rel.startsWith('assets/'),
    gzipped,
  };
}

/** A stale `.gz` from an older build must never be served in place of the file. */
function matches(gz: Buffer, body: Buffer): boolean {
  try {
    return gunzipSync(gz).equals(body);
  } catch {
    return false;
  }
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue; // the build's own stamp (.inputs), never served
    const full = join(dir, name);
    if (statSync(full).isDirectory()) yield* walk(full);
    else yield full;
  }
}
