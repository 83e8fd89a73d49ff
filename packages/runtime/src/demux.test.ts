import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Demuxer, demuxBuffer } from './demux.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('Engine API stream demultiplexing', () => {
  it('splits stdout and stderr frames however the bytes are chunked', () => {
    const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err\n'), frame(1, 'out two\n'), frame(1, '')]);
    for (const size of [1, 3, 8, 9, all.length]) {
      const d = new Demuxer();
      for (let i = 0; i < all.length; i += size) d.push(all.subarray(i, i + size));
      assert.equal(d.stdout, 'out one\nout two\n');
      assert.equal(d.stderr, 'err\n');
      assert.equal(d.truncated, false);
    }
    assert.deepEqual(demuxBuffer(all), { stdout: 'out one\nout two\n', stderr: 'err\n' });
  });

  it('keeps at most maxBytes per stream and says it dropped some', () => {
    const d = new Demuxer(5);
    d.push(Buffer.concat([frame(1, 'abc'), frame(1, 'defgh'), frame(2, 'xy')]));
    assert.equal(d.stdout, 'abcde');
    assert.equal(d.stderr, 'xy');
    assert.equal(d.truncated, true);
  });
});
