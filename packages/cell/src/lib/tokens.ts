import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A high-entropy token (256 bits), base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Tokens are stored as SHA-256 hashes, never as given. */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** A password people can read aloud and type: 20 chars from an unambiguous alphabet (~110 bits). */
export function generatePassword(length = 20): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789';
  const out: string[] = [];
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // rejection sampling keeps the distribution uniform
      if (byte < alphabet.length * Math.floor(256 / alphabet.length) && out.length < length) {
        out.push(alphabet[byte % alphabet.length]!);
      }
    }
  }
  return out.join('');
}

export const nowIso = (): string => new Date().toISOString();
