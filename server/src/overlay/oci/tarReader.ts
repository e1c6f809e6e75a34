/**
 * A streaming tar reader: entries one after another from any byte stream (a file, a blob
 * inside an image archive, a decompressor), each entry's data streamed too. Memory stays
 * bounded by one input chunk plus the PAX/long-name headers (at most MAX_META_SIZE each).
 */
import { createError } from '../errors';
import { decodeName } from '../names';
import { BLOCK, checkBlock, cstr, MAX_META_SIZE, num, parsePax } from './tarHeader';

/** What a tar entry says about itself. */
export interface TarEntryInfo {
  name: string;
  /** The typeflag: '0' file (also for NUL), '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, '7' contiguous file. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds (fractions from PAX kept). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* records, values as bytes. */
  xattrs: [string, Buffer][];
  size: number;
}

export interface TarEntry extends TarEntryInfo {
  /** The entry's data as it streams in; read it (or not) before asking for the next entry. */
  body(): AsyncIterable<Buffer>;
}

function truncated(): Error {
  return createError('EINVAL', 'import-layer', undefined, 'truncated tar archive');
}

/** Bytes from an async source, read exactly as asked. */
class ByteReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly it: AsyncIterator<Uint8Array>;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.buffered += b.length;
      return true;
    }
    return false;
  }

  /** Exactly `n` bytes, or undefined when the source ended before the first of them; EINVAL when it ends midway. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) if (!(await this.more())) break;
    if (this.buffered === 0 && n > 0) return undefined;
    if (this.buffered < n) throw truncated();
    let out: Buffer;
    if (this.chunks[0].length >= n) {
      out = this.chunks[0].subarray(0, n);
      this.take(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - got);
        c.copy(out, got, 0, k);
        got += k;
        this.take(k);
      }
    }
    return out;
  }

  /** Up to `n` bytes as they come (slices of the input, not copied); EINVAL when the source ends first. */
  async *stream(n: number, progress: (k: number) => void): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.more())) throw truncated();
      const c = this.chunks[0];
      const k = Math.min(c.length, left);
      const piece = c.subarray(0, k);
      this.take(k);
      left -= k;
      progress(k);
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n, () => undefined)) void _;
  }

  private take(k: number): void {
    const c = this.chunks[0];
    if (k === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(k);
    this.buffered -= k;
    this.offset += k;
  }

  /** Stop reading the source (it is closed, e.g. a file stream). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/**
 * The entries of a tar stream (uncompressed: see compression.ts). PAX headers (x, g) and GNU
 * long names (L, K) are folded into the entry they describe. Ends at the end-of-archive
 * block or the end of the stream.
 */
export async function* readTarEntries(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source);
  let global = new Map<string, Buffer>();
  let local = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const at = r.offset;
      const h = await r.read(BLOCK);
      if (!h || h.every((b) => b === 0)) return;
      checkBlock(h, at);
      const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
      let size = num(h, 124, 12);
      if (local.has('size')) size = Number(local.get('size')!.toString());
      if (!Number.isSafeInteger(size) || size < 0) throw createError('EINVAL', 'import-layer', undefined, `bad entry size at offset ${at}`);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        if (size > MAX_META_SIZE)
          throw createError('EINVAL', 'import-layer', undefined, `extended header of ${size} bytes at offset ${at} (at most ${MAX_META_SIZE})`);
        const data = size === 0 ? Buffer.alloc(0) : await r.read(size);
        if (!data) throw truncated();
        await r.skip(pad);
        if (type === 'x') local = parsePax(data);
        else if (type === 'g') global = new Map([...global, ...parsePax(data)]);
        else if (type === 'L') longName = cstr(data, 0, data.length);
        else longLink = cstr(data, 0, data.length);
        continue;
      }
      const pax = global.size > 0 ? new Map([...global, ...local]) : local;
      const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(h, 345, 155) : '';
      const paxPath = pax.get('path');
      const paxLink = pax.get('linkpath');
      const numOr = (k: string, v: number): number => (pax.has(k) ? Number(pax.get(k)!.toString()) : v);
      const xattrs: [string, Buffer][] = [];
      for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs.push([k.slice('SCHILY.xattr.'.length), v]);
      let left = size;
      let opened = false;
      const entry: TarEntry = {
        name: (paxPath && decodeName(paxPath)) ?? longName ?? (prefix ? prefix + '/' : '') + cstr(h, 0, 100),
        type,
        linkname: (paxLink && decodeName(paxLink)) ?? longLink ?? cstr(h, 157, 100),
        xattrs,
        size,
        mode: num(h, 100, 8) & 0o7777,
        uid: numOr('uid', num(h, 108, 8)),
        gid: numOr('gid', num(h, 116, 8)),
        mtime: numOr('mtime', num(h, 136, 12)),
        devmajor: num(h, 329, 8),
        devminor: num(h, 337, 8),
        body: () => {
          if (opened) throw new Error(`the data of ${entry.name} is read once`);
          opened = true;
          return r.stream(size, (k) => (left -= k));
        },
      };
      local = new Map();
      longName = longLink = undefined;
      yield entry;
      await r.skip(left + pad); // whatever the reader left unread
    }
  } finally {
    await r.close();
  }
}
