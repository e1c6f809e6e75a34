/**
 * File contents from the server to the client, binary and without copies.
 *
 * The server and the extension host run on the same machine, so the server answers
 * readFile with WHERE the served copy lives (real path, inode, size) and the client
 * reads it itself into one Buffer of the final size. Measured (npm run bench): base64
 * inside JSON costs several times a plain read; this costs one small round trip.
 *
 * Consistency: the server decides which copy is served at the time of the request.
 * A lower copy never changes (lower layers are immutable), so reading it later is the
 * same as reading it then, even if the file was copied up meanwhile. An upper copy may
 * be replaced (atomic rename) or removed: the client checks the inode it opened
 * against the server's answer and asks again; a copy changed while being read
 * (size or mtime moved) is read again too. After a few tries it falls back to
 * `inline` (data in the response), which the server reads under its own lookup.
 *
 * Plain Node: no vscode import, so the extension, tests and benchmarks share it.
 */
import * as fs from 'node:fs';
import type { ReadFile } from '../../shared/src/protocol';

export type ReadFileRequest = (params: ReadFile.Params) => Promise<ReadFile.Result>;

const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const TRIES = 3;
/**
 * Files up to this size are read with synchronous calls: four thread-pool round trips
 * cost more than the read itself (1 MiB: 0.1 ms sync vs 0.3 ms async); the caller
 * blocks for well under a millisecond. Larger files are read asynchronously.
 */
const SYNC_MAX = 4 * 1024 * 1024;

/** One synchronous attempt: the data, or undefined when the copy is not the one the server named. */
function readSmall(where: ReadFile.Result): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(where.realPath, O_READ);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.ino !== where.ino || !st.isFile() || st.size > SYNC_MAX) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buf, got, st.size - got, got);
      if (n === 0) return undefined;
      got += n;
    }
    const after = fs.fstatSync(fd);
    return after.size === st.size && after.mtimeMs === st.mtimeMs ? buf : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function openP(p: string): Promise<number> {
  return new Promise((res, rej) => fs.open(p, O_READ, (err, fd) => (err ? rej(err) : res(fd))));
}
function fstatP(fd: number): Promise<fs.Stats> {
  return new Promise((res, rej) => fs.fstat(fd, (err, st) => (err ? rej(err) : res(st))));
}
function readP(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? rej(err) : res(n))));
}
function closeQuietly(fd: number): void {
  fs.close(fd, () => undefined);
}

/** Read `size` bytes of an open file into one buffer; undefined if the file changed under us. */
async function readAll(fd: number, st: fs.Stats): Promise<Buffer | undefined> {
  const size = st.size;
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = await readP(fd, buf, got, Math.min(size - got, 0x7fff0000), got);
    if (n === 0) return undefined; // shrank while we read
    got += n;
  }
  const after = await fstatP(fd);
  if (after.size !== size || after.mtimeMs !== st.mtimeMs) return undefined;
  return buf;
}

/**
 * Read a whole file of an overlay. `request` sends overlay/readFile (e.g.
 * `(p) => client.sendRequest(ReadFile.type, p)`); its errors (ENOENT, EISDIR...) pass through.
 */
export async function readOverlayFile(request: ReadFileRequest, name: string, path: string): Promise<Uint8Array> {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const where = await request({ name, path });
    if (where.data !== undefined) return Buffer.from(where.data, 'base64');
    if (where.size <= SYNC_MAX) {
      const small = readSmall(where);
      if (small) return small;
      continue;
    }
    let fd: number;
    try {
      fd = await openP(where.realPath);
    } catch {
      continue; // replaced, removed or unreadable since the server answered: ask again
    }
    try {
      const st = await fstatP(fd);
      if (st.ino !== where.ino || !st.isFile()) continue;
      const data = await readAll(fd, st);
      if (data) return data;
    } finally {
      closeQuietly(fd);
    }
  }
  const inline = await request({ name, path, inline: true });
  return Buffer.from(inline.data ?? '', 'base64');
}

/** base64 for overlay/writeFile and overlay/write. */
export function encodeBytes(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

export function decodeBytes(data: string): Uint8Array {
  return Buffer.from(data, 'base64');
}
