/**
 * A streaming tar writer into any Writable (a file, a blob being stored): it hashes the tar as
 * it goes (the layer's diff_id) and, when it compresses (gzip), the bytes written too (the
 * blob's digest and size), with back-pressure all the way down.
 */
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { BLOCK, encodeHeader, padding, type TarHeader } from './tarHeader';

export interface TarDigests {
  /** sha256 of the uncompressed tar ("sha256:..."): the layer's diff_id. */
  diffId: string;
  /** sha256 of the bytes written (compressed or not): the blob's digest. */
  digest: string;
  /** Bytes written. */
  size: number;
}

/** Counts and hashes what passes. */
function tap(hash: Hash, count: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      count(chunk.length);
      done(null, chunk);
    },
  });
}

export class TarWriter {
  private readonly tarHash = createHash('sha256');
  private readonly blobHash = createHash('sha256');
  private readonly input = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<void>;
  private written = 0;
  /** Entries written (PAX headers not counted). */
  entries = 0;

  constructor(out: Writable, opts: { gzip: boolean }) {
    const counted = tap(this.blobHash, (n) => (this.written += n));
    this.done = opts.gzip ? pipeline(this.input, zlib.createGzip(), counted, out) : pipeline(this.input, counted, out);
    this.done.catch(() => undefined); // reported by end()
  }

  /** Write tar bytes (a header's blocks, data, padding), waiting while the output is behind. */
  async write(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.tarHash.update(buf);
    if (this.input.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => {
        this.input.off('drain', onDrain);
        reject(e);
      };
      const onDrain = (): void => {
        this.input.off('error', onErr);
        resolve();
      };
      this.input.once('drain', onDrain);
      this.input.once('error', onErr);
    });
  }

  async header(h: TarHeader): Promise<void> {
    this.entries++;
    for (const b of encodeHeader(h)) await this.write(b);
  }

  /** A file entry: its header, then `size` bytes from `data`, padded. A source that gives fewer is padded with zeros. */
  async file(h: TarHeader, data: AsyncIterable<Buffer>): Promise<void> {
    await this.header(h);
    let left = h.size;
    for await (const c of data) {
      const piece = c.length > left ? c.subarray(0, left) : c;
      await this.write(piece);
      left -= piece.length;
      if (left === 0) break;
    }
    if (left > 0) await this.write(Buffer.alloc(left)); // shrank meanwhile: keep the header honest
    await this.write(padding(h.size));
  }

  /** The end-of-archive blocks; resolves when everything is written. */
  async end(): Promise<TarDigests> {
    await this.write(Buffer.alloc(BLOCK * 2));
    this.input.end();
    await this.done;
    return { diffId: 'sha256:' + this.tarHash.digest('hex'), digest: 'sha256:' + this.blobHash.digest('hex'), size: this.written };
  }

  /** Give up: the output is closed, what was written stays as it is. */
  async abort(): Promise<void> {
    this.input.destroy();
    await this.done.catch(() => undefined);
  }
}
