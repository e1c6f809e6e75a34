/**
 * File names are bytes on Linux; the engine keeps JS strings. A name that is not valid
 * UTF-8 (layers from containers hold such names) is decoded reversibly: every byte that
 * is not part of a valid UTF-8 sequence becomes U+F700 + byte (U+F780–U+F7FF, Private Use
 * Area: still valid Unicode, so JSON and VS Code URIs carry it). A valid sequence that
 * decodes into that range is escaped byte by byte too, so different byte names never
 * decode to the same string. Paths stay strings inside the engine; encodePath() turns one
 * back into bytes at the fs call.
 *
 * A string that was not made by decodeName may spell bytes that are valid UTF-8
 * ("\uF7C3\uF7A9" is the bytes of "é"): it reaches the same file as the plain spelling.
 */
import * as fs from 'node:fs';

const ESCAPE_BASE = 0xf700;
const ESCAPED = /[\uF780-\uF7FF]/;
/** What a lossy string listing shows for a name that needs decodeName: U+FFFD or an escape-range char. */
const SUSPECT = /[\uFFFD\uF780-\uF7FF]/;

/** Does this path or name hold escaped bytes (so fs needs it as a Buffer)? */
export function hasEscapes(s: string): boolean {
  return ESCAPED.test(s);
}

/** The path as fs takes it: the string itself, or its bytes when it holds escaped bytes. */
export function encodePath(p: string): string | Buffer {
  return ESCAPED.test(p) ? nameBytes(p) : p;
}

/** The bytes of a name or path (escape chars as their single byte, the rest UTF-8). */
export function nameBytes(s: string): Buffer {
  if (!ESCAPED.test(s)) return Buffer.from(s);
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xf780 || c > 0xf7ff) continue;
    if (i > start) parts.push(Buffer.from(s.slice(start, i)));
    parts.push(Buffer.of(c - ESCAPE_BASE));
    start = i + 1;
  }
  if (start < s.length) parts.push(Buffer.from(s.slice(start)));
  return Buffer.concat(parts);
}

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function sequenceAt(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf; // no UTF-16 surrogates
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf; // nothing above U+10FFFF
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** A name (or path) from its bytes: UTF-8, with every other byte escaped. */
export function decodeName(buf: Uint8Array): string {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const plain = b.toString('utf8');
  if (!SUSPECT.test(plain)) return plain;
  let out = '';
  let run = 0; // start of the pending run of valid bytes
  const escape = (from: number, to: number): void => {
    if (from > run) out += b.toString('utf8', run, from);
    for (let k = from; k < to; k++) out += String.fromCharCode(ESCAPE_BASE + b[k]);
    run = to;
  };
  for (let i = 0; i < b.length;) {
    const n = sequenceAt(b, i);
    if (n === 0) {
      escape(i, i + 1);
      i++;
      continue;
    }
    // EF 9E 80..EF 9F BF is U+F780..U+F7FF: the escapes themselves, so escaped too.
    if (n === 3 && b[i] === 0xef && (b[i + 1] === 0x9e || b[i + 1] === 0x9f)) escape(i, i + 3);
    i += n;
  }
  if (run < b.length) out += b.toString('utf8', run);
  return out;
}

function decodeDirents(list: fs.Dirent<Buffer>[]): fs.Dirent[] {
  for (const d of list) (d as unknown as { name: string }).name = decodeName(d.name);
  return list as unknown as fs.Dirent[];
}

/**
 * readdirSync(dir, { withFileTypes: true }) with names decoded by decodeName. The string
 * listing is kept unless a name in it shows U+FFFD or an escape-range char; then the
 * directory is read again as bytes.
 */
export function readdirEntries(dir: string): fs.Dirent[] {
  const p = encodePath(dir);
  const list = fs.readdirSync(p, { withFileTypes: true });
  for (const d of list) {
    if (SUSPECT.test(d.name)) return decodeDirents(fs.readdirSync(p, { withFileTypes: true, encoding: 'buffer' }));
  }
  return list;
}

/** readdirSync(dir) with names decoded by decodeName (see readdirEntries). */
export function readdirNames(dir: string): string[] {
  const p = encodePath(dir);
  const list = fs.readdirSync(p);
  for (const name of list) {
    if (SUSPECT.test(name)) return fs.readdirSync(p, { encoding: 'buffer' }).map(decodeName);
  }
  return list;
}

/** readlinkSync with the target decoded by decodeName. */
export function readlinkName(p: string): string {
  return decodeName(fs.readlinkSync(encodePath(p), { encoding: 'buffer' }));
}

/** Byte order of two names or paths (what `ls` in the C locale and tar use). */
export function compareNames(a: string, b: string): number {
  if (!ESCAPED.test(a) && !ESCAPED.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return Buffer.compare(nameBytes(a), nameBytes(b));
}

/** O_PATH (Linux): a descriptor that names a file without opening it (no device is ever opened). */
const O_PATH = 0o10000000;

/**
 * Call `fn` with a string path that reaches `p` for tools that only take strings
 * (@napi-rs/xattr, mknod, cp). A path with escaped bytes is reached through
 * /proc/<pid>/fd of an O_PATH descriptor: of its parent directory when the last name is
 * plain, of the directory itself ("/." so l*xattr stays on it) when the last name is
 * escaped. A non-directory whose own name is escaped has no string path: undefined.
 * The /proc path works from child processes too (same user).
 */
export function withStringPath<T>(p: string, fn: (s: string) => T): T | undefined {
  if (!ESCAPED.test(p)) return fn(p);
  const slash = p.lastIndexOf('/');
  const base = p.slice(slash + 1);
  const plainBase = !ESCAPED.test(base) && base !== '' && base !== '.' && base !== '..';
  let fd: number;
  try {
    fd = plainBase
      ? fs.openSync(nameBytes(p.slice(0, slash) || '/'), O_PATH | fs.constants.O_DIRECTORY)
      : fs.openSync(nameBytes(p), O_PATH | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return fn(`/proc/${process.pid}/fd/${fd}/${plainBase ? base : '.'}`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A path given as a plain string (a setting, the command line): its escape-range chars
 * spelled as escapes, so encodePath() gives its own UTF-8 bytes back.
 */
export function fromPlainPath(s: string): string {
  return ESCAPED.test(s) ? decodeName(Buffer.from(s)) : s;
}
