/**
 * The Engine API multiplexes stdout and stderr of a container without a TTY into frames:
 * 1 byte stream type (1 stdout, 2 stderr), 3 zero bytes, 4 bytes big-endian length, payload.
 * Demuxer accepts the bytes in any chunking and keeps at most `maxBytes` of each stream.
 */
export class Demuxer {
  private pending: Buffer = Buffer.alloc(0);
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private outBytes = 0;
  private errBytes = 0;
  /** True when some output was dropped because a stream passed maxBytes. */
  truncated = false;

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const type = this.pending[0];
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      if (type === 2) this.errBytes = this.keep(this.err, this.errBytes, payload);
      else this.outBytes = this.keep(this.out, this.outBytes, payload); // 0 (stdin echo) and 1 count as stdout
    }
  }

  private keep(into: Buffer[], have: number, payload: Buffer): number {
    const room = this.maxBytes - have;
    if (room <= 0) {
      if (payload.length) this.truncated = true;
      return have;
    }
    if (payload.length > room) this.truncated = true;
    const part = payload.length > room ? payload.subarray(0, room) : payload;
    into.push(Buffer.from(part));
    return have + part.length;
  }

  get stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }

  get stderr(): string {
    return Buffer.concat(this.err).toString('utf8');
  }
}

/** Splits a complete multiplexed buffer (e.g. the logs of a stopped container). */
export function demuxBuffer(data: Buffer): { stdout: string; stderr: string } {
  const demuxer = new Demuxer();
  demuxer.push(data);
  return { stdout: demuxer.stdout, stderr: demuxer.stderr };
}
