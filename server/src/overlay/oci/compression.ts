/**
 * Layer blobs as byte streams: a tar, or a tar compressed with gzip or zstd (media types
 * ...tar, ...tar+gzip, ...tar+zstd), told apart by their first bytes. gzip goes through
 * node:zlib; zstd through fzstd (pure JavaScript, streaming): Node's own zstd is only in
 * Node >= 22.15 (VS Code's extension host runs Node 20 too), a native addon would need a
 * prebuilt binary per platform in the .vsix, and the zstd program may not be installed.
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';
import { createError } from '../errors';

export type Compression = 'none' | 'gzip' | 'zstd';

/** A layer's source: a file path, a buffer, or a stream of bytes (a blob inside an image archive...). */
export type LayerSource = string | Buffer | AsyncIterable<Uint8Array>;

const GZIP = [0x1f, 0x8b];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];

/** Input fed to fzstd at once: a zstd block of 128 KiB can be 4 bytes (RLE), so one push yields at most ~16 MiB. */
const ZSTD_SLICE = 512;

function bytesOf(source: LayerSource): AsyncIterable<Uint8Array> {
  if (typeof source === 'string') return fs.createReadStream(source, { highWaterMark: 1 << 16 });
  if (Buffer.isBuffer(source)) return Readable.from([source], { objectMode: false });
  return source;
}

/** The first `n` bytes of a source (fewer at its end) and the whole source again. */
async function peek(source: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    seen.push(b);
    len += b.length;
  }
  async function* all(): AsyncGenerator<Buffer> {
    try {
      yield* seen;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      }
    } finally {
      await it.return?.();
    }
  }
  return { head: Buffer.concat(seen).subarray(0, n), all: all() };
}

function startsWith(b: Buffer, magic: number[]): boolean {
  return b.length >= magic.length && magic.every((m, i) => b[i] === m);
}

async function* gunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const z = zlib.createGunzip();
  const fed = pipeline(Readable.from(input), z);
  fed.catch(() => undefined); // the error reaches the reader through z
  try {
    for await (const c of z) yield c as Buffer;
  } catch (err) {
    throw createError('EINVAL', 'import-layer', undefined, `not a readable gzip stream: ${(err as Error).message}`);
  } finally {
    z.destroy();
  }
}

async function* unzstd(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  const d = new Decompress((chunk) => {
    if (chunk.length > 0) out.push(Buffer.from(chunk));
  });
  const push = (c: Uint8Array, final: boolean): void => {
    try {
      d.push(c, final);
    } catch (err) {
      throw createError('EINVAL', 'import-layer', undefined, `not a readable zstd stream: ${(err as Error).message}`);
    }
  };
  for await (const c of input) {
    for (let i = 0; i < c.length; i += ZSTD_SLICE) {
      push(c.subarray(i, i + ZSTD_SLICE), false);
      while (out.length > 0) yield out.shift() as Buffer;
    }
  }
  push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift() as Buffer;
}

/** The uncompressed bytes of a layer blob, and how it was compressed. */
export async function layerBytes(source: LayerSource): Promise<{ compression: Compression; bytes: AsyncIterable<Buffer> }> {
  const { head, all } = await peek(bytesOf(source), ZSTD.length);
  if (startsWith(head, GZIP)) return { compression: 'gzip', bytes: gunzip(all) };
  if (startsWith(head, ZSTD)) return { compression: 'zstd', bytes: unzstd(all) };
  return { compression: 'none', bytes: all };
}
