/**
 * Tar headers as OCI layers need them, as bytes: ustar blocks with PAX extended headers
 * (path/linkpath records and SCHILY.xattr.* values carried as raw bytes, as Go's archive/tar
 * writes and reads them), GNU long names (L/K) and base-256 numbers on reading.
 * Why not a tar library: test/unit/tarLibraries.test.ts shows what tar-stream and node-tar lose.
 */
import * as path from 'node:path';
import { createError } from '../errors';
import { decodeName, nameBytes } from '../names';

export const BLOCK = 512;
/** The largest PAX or GNU long-name header read (Go's archive/tar limit). */
export const MAX_META_SIZE = 1 << 20;

/** One archive member's header. Names are engine strings (bytes that are not UTF-8 escaped, names.ts). */
export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds. */
  mtime: number;
  /** '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo. */
  type: string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
}

export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

function octal(buf: Buffer, off: number, len: number, value: number): boolean {
  const s = Math.floor(value).toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'latin1');
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Split a path (bytes) into ustar prefix/name, or undefined when it does not fit. */
function splitUstar(b: Buffer): [Buffer, Buffer] | undefined {
  if (b.length <= 100) return [Buffer.alloc(0), b];
  for (let i = b.length - 1; i > 0; i--) {
    if (b[i] !== 0x2f) continue;
    if (i <= 155 && b.length - i - 1 <= 100 && b.length - i - 1 > 0) return [b.subarray(0, i), b.subarray(i + 1)];
    if (i < b.length - 101) break;
  }
  return undefined;
}

function checksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

/** The blocks of one header: a PAX header and its records first when a field does not fit ustar. */
export function encodeHeader(h: TarHeader): Buffer[] {
  const pax: Buffer[] = [];
  const block = Buffer.alloc(BLOCK);
  const nameB = nameBytes(h.name);
  const split = splitUstar(nameB);
  if (split) {
    split[1].copy(block, 0);
    split[0].copy(block, 345);
  } else {
    pax.push(paxRecord('path', nameB));
    nameB.copy(block, 0, 0, 100);
  }
  octal(block, 100, 8, h.mode & 0o7777);
  if (!octal(block, 108, 8, h.uid)) {
    pax.push(paxRecord('uid', Buffer.from(String(h.uid))));
    octal(block, 108, 8, 0);
  }
  if (!octal(block, 116, 8, h.gid)) {
    pax.push(paxRecord('gid', Buffer.from(String(h.gid))));
    octal(block, 116, 8, 0);
  }
  if (!octal(block, 124, 12, h.size)) {
    pax.push(paxRecord('size', Buffer.from(String(h.size))));
    octal(block, 124, 12, 0);
  }
  octal(block, 136, 12, Math.max(0, h.mtime));
  block.write(h.type, 156, 1, 'latin1');
  if (h.linkname !== undefined) {
    const lb = nameBytes(h.linkname);
    if (lb.length > 100) pax.push(paxRecord('linkpath', lb));
    else lb.copy(block, 157);
  }
  block.write('ustar\u000000', 257, 8, 'latin1');
  octal(block, 329, 8, h.devmajor ?? 0);
  octal(block, 337, 8, h.devminor ?? 0);
  for (const [k, v] of h.xattrs ?? []) pax.push(paxRecord('SCHILY.xattr.' + k, v));
  checksum(block);
  if (pax.length === 0) return [block];
  const data = Buffer.concat(pax);
  const ph = Buffer.alloc(BLOCK);
  Buffer.concat([Buffer.from('PaxHeaders.0/'), nameBytes(path.posix.basename(h.name))]).copy(ph, 0, 0, 99);
  octal(ph, 100, 8, 0o644);
  octal(ph, 108, 8, 0);
  octal(ph, 116, 8, 0);
  octal(ph, 124, 12, data.length);
  octal(ph, 136, 12, Math.max(0, h.mtime));
  ph.write('x', 156, 1, 'latin1');
  ph.write('ustar\u000000', 257, 8, 'latin1');
  checksum(ph);
  return [ph, data, padding(data.length), block];
}

// ---------------------------------------------------------------- reading

/** A NUL-terminated name field, decoded by decodeName (names are bytes). */
export function cstr(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return decodeName(buf.subarray(off, end < 0 || end > off + len ? off + len : end));
}

/** An octal field, or base-256 (GNU/star, positive only). */
export function num(buf: Buffer, off: number, len: number): number {
  if (buf[off] & 0x80) {
    let v = buf[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i];
    return v;
  }
  const s = buf
    .subarray(off, off + len)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^[\0 ]+/, '');
  return s === '' ? 0 : parseInt(s, 8);
}

/** PAX records, values as raw bytes. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString(), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString(), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

/** The header block at `offset` is intact (its checksum matches), else EINVAL. */
export function checkBlock(h: Buffer, offset: number): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  if (sum !== num(h, 148, 8)) throw createError('EINVAL', 'import-layer', undefined, `bad tar header checksum at offset ${offset}`);
}
