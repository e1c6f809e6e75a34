/**
 * The files of an image as it was handed over: an OCI image layout directory, or a `docker
 * save` / `podman save` archive (a tar, read in place: its headers are indexed once by seeking,
 * each member is then a byte range of the file, streamed, never held in memory whole).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createError } from '../overlay';
import { BLOCK, checkBlock, cstr, num, parsePax } from '../overlay/oci/tarHeader';

export interface Blobs {
  /** What it is, for messages: the archive or the directory. */
  readonly where: string;
  has(name: string): boolean;
  /** A small member (JSON), whole. */
  read(name: string): Buffer;
  /** A member as a stream of bytes. */
  open(name: string): AsyncIterable<Uint8Array>;
  /** A member's size in bytes. */
  size(name: string): number;
}

const normal = (name: string): string => path.posix.normalize(name.replace(/^\.?\/+/, ''));

/** An OCI image layout (or any directory of image files). */
export function dirBlobs(dir: string): Blobs {
  const real = (name: string): string => {
    const n = normal(name);
    if (n.startsWith('../') || n === '..' || path.posix.isAbsolute(n))
      throw createError('EACCES', 'image', name, `refusing a path outside the image directory ${dir}`);
    return path.join(dir, n);
  };
  return {
    where: dir,
    has: (name) => fs.existsSync(real(name)),
    read: (name) => fs.readFileSync(real(name)),
    open: (name) => fs.createReadStream(real(name), { highWaterMark: 1 << 20 }),
    size: (name) => fs.statSync(real(name)).size,
  };
}

interface Member {
  offset: number;
  size: number;
}

function truncated(file: string, at: number): Error {
  return createError('EINVAL', 'image', file, `truncated image archive: it ends inside the entry at offset ${at}`);
}

/** A tar archive of image files, indexed by seeking from header to header. */
export function tarBlobs(file: string): Blobs {
  const members = new Map<string, Member>();
  const fd = fs.openSync(file, 'r');
  try {
    const total = fs.fstatSync(fd).size;
    const block = Buffer.alloc(BLOCK);
    let at = 0;
    let longName: string | undefined;
    let paxName: string | undefined;
    for (;;) {
      if (at + BLOCK > total) {
        if (at === total) break; // no end-of-archive blocks: tolerated, as tar does
        throw truncated(file, at);
      }
      fs.readSync(fd, block, 0, BLOCK, at);
      if (block.every((b) => b === 0)) break;
      checkBlock(block, at);
      const type = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
      const size = num(block, 124, 12);
      const dataAt = at + BLOCK;
      if (dataAt + size > total) throw truncated(file, at);
      const next = dataAt + size + ((BLOCK - (size % BLOCK)) % BLOCK);
      if (type === 'x' || type === 'L') {
        if (size > 1 << 20) throw createError('EINVAL', 'image', file, `extended header of ${size} bytes at offset ${at}`);
        const data = Buffer.alloc(size);
        fs.readSync(fd, data, 0, size, dataAt);
        if (type === 'L') longName = cstr(data, 0, data.length);
        else paxName = parsePax(data).get('path')?.toString();
      } else if (type !== 'g') {
        const prefix = block.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(block, 345, 155) : '';
        const name = paxName ?? longName ?? (prefix ? prefix + '/' : '') + cstr(block, 0, 100);
        if (type === '0' || type === '7') members.set(normal(name), { offset: dataAt, size });
        paxName = longName = undefined;
      }
      at = next;
    }
  } finally {
    fs.closeSync(fd);
  }
  const member = (name: string): Member => {
    const m = members.get(normal(name));
    if (!m) throw createError('ENOENT', 'image', file, `the image archive has no ${JSON.stringify(name)}`);
    return m;
  };
  return {
    where: file,
    has: (name) => members.has(normal(name)),
    read: (name) => {
      const m = member(name);
      const b = Buffer.alloc(m.size);
      const fd2 = fs.openSync(file, 'r');
      try {
        fs.readSync(fd2, b, 0, m.size, m.offset);
      } finally {
        fs.closeSync(fd2);
      }
      return b;
    },
    open: (name) => {
      const m = member(name);
      return m.size === 0 ? (async function* () {})() : fs.createReadStream(file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
    },
    size: (name) => member(name).size,
  };
}
