/**
 * Changes as OCI layers. Export: the upper layer (or any layer directory) as an OCI
 * image-spec layer changeset (tar, optionally gzip) — files, directories, symlinks,
 * hard links (typeflag 1), devices/fifos, mode, uid/gid, mtime (whole seconds, as
 * moby writes them), user.* xattrs (SCHILY.xattr PAX records), and whiteouts in OCI
 * form (`.wh.NAME`; `.wh..wh..opq` first in an opaque directory, then the whiteouts,
 * then the other entries), whatever whiteout format the layer uses on disk.
 * Import: unpack such a tarball into a directory that can serve as a lower layer, in
 * a chosen whiteout format, refusing entries that would land outside it.
 * The tar code is a small ustar + PAX writer/reader (no dependency). Plain Node.
 * Names are bytes in the tar (ustar fields and PAX path/linkpath records alike, as Go's
 * archive/tar writes them), so a name that is not valid UTF-8 goes through unchanged
 * (names.ts decodes and encodes it).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { createError } from './errors';
import { whiteoutFormat } from './formats';
import { OPAQUE as OCI_OPAQUE, WH, WH_META } from './formats/oci';
import { lstatOrUndefined } from './lstat';
import { mknod as mknodAt } from './mknod';
import { compareNames, decodeName, encodePath, fromPlainPath, hasEscapes, nameBytes, readdirEntries, readlinkName } from './names';
import type { Overlay } from './overlay';
import type { WhiteoutFormat } from './types';
import { getXattr, listXattrs, setXattr } from './xattr';

const BLOCK = 512;

export interface LayerFormat {
  /** On-disk whiteout format of the layer directory. */
  whiteouts: WhiteoutFormat;
  /** Kernel format: markers in user.overlay.* instead of trusted.overlay.*. */
  userxattr?: boolean;
}

export interface ExportOptions {
  /** gzip the tarball; default: true when the file name ends in .gz or .tgz. */
  gzip?: boolean;
}

export interface ExportResult {
  /** sha256 of the uncompressed tar ("sha256:..."), the layer's diff_id. */
  diffId: string;
  /** Number of tar entries written (PAX headers not counted). */
  entries: number;
}

/** Export the upper layer of an open overlay as an OCI layer tarball. EROFS without an upper. */
export async function exportLayer(ov: Overlay, file: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const upper = ov.view.upper;
  if (!upper) throw createError('EROFS', 'export', file, 'the overlay has no upper layer to export');
  return exportLayerDir(ov.stack.upper as string, file, { whiteouts: ov.stack.whiteouts, userxattr: ov.stack.userxattr }, opts);
}

// ---------------------------------------------------------------- tar writing

interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string; // '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
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

function encodeHeader(h: TarHeader): Buffer[] {
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
  const base = path.posix.basename(h.name);
  Buffer.concat([Buffer.from('PaxHeaders.0/'), nameBytes(base)]).copy(ph, 0, 0, 99);
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

function checksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

class TarSink {
  private readonly hash = createHash('sha256');
  private readonly input: PassThrough;
  private readonly done: Promise<void>;
  entries = 0;

  constructor(file: string, gzip: boolean) {
    this.input = new PassThrough({ highWaterMark: 1 << 20 });
    const out = fs.createWriteStream(file, { mode: 0o644 });
    this.done = gzip ? pipeline(this.input, zlib.createGzip(), out) : pipeline(this.input, out);
    this.done.catch(() => {
      /* reported by end() */
    });
  }

  async write(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.hash.update(buf);
    if (!(this.input as Writable).write(buf)) {
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
  }

  async header(h: TarHeader): Promise<void> {
    this.entries++;
    for (const b of encodeHeader(h)) await this.write(b);
  }

  async end(): Promise<string> {
    await this.write(Buffer.alloc(BLOCK * 2));
    this.input.end();
    await this.done;
    return 'sha256:' + this.hash.digest('hex');
  }
}

/** user.* xattrs other than overlay markers, sorted by name. */
function exportedXattrs(real: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const name of listXattrs(real).sort()) {
    if (!name.startsWith('user.') || name.startsWith('user.overlay.')) continue;
    const v = getXattr(real, name);
    if (v !== undefined) out.push([name, v]);
  }
  return out;
}

/**
 * Export a layer directory (an upper, or a lower to build a base image) as an OCI
 * layer tarball. Entries are relative paths without a leading `./`, directories end
 * in `/`; the root directory itself is not written.
 */
export async function exportLayerDir(layerDir: string, file: string, format: LayerFormat, opts: ExportOptions = {}): Promise<ExportResult> {
  const dir = fromPlainPath(layerDir);
  const gzip = opts.gzip ?? /\.(t?gz)$/.test(file);
  const layerFormat = whiteoutFormat(format.whiteouts, { userxattr: format.userxattr === true });
  fs.statSync(encodePath(dir)); // ENOENT/ENOTDIR early, before the output file is created
  const sink = new TarSink(file, gzip);
  const links = new Map<string, string>(); // dev:ino → first archived path
  const walk = async (real: string, rel: string): Promise<void> => {
    const dirSt = fs.lstatSync(encodePath(real));
    const verdict = layerFormat.entries({ real, st: dirSt });
    const whiteouts: string[] = [];
    const others: { name: string; st: fs.Stats }[] = [];
    for (const d of readdirEntries(real).sort((a, b) => compareNames(a.name, b.name))) {
      const v = verdict(d);
      if (v === null) continue; // the format's own markers (an opaque marker is written below)
      if (typeof v === 'string') {
        whiteouts.push(v);
        continue;
      }
      const st = v ?? lstatOrUndefined(real + '/' + d.name);
      if (st) others.push({ name: d.name, st });
    }
    const base = rel === '' ? '' : rel + '/';
    const marker = (name: string): TarHeader => ({
      name: base + name,
      mode: 0o644,
      uid: dirSt.uid,
      gid: dirSt.gid,
      size: 0,
      mtime: Math.floor(dirSt.mtimeMs / 1000),
      type: '0',
    });
    if (layerFormat.isOpaque(real)) await sink.header(marker(OCI_OPAQUE));
    for (const w of whiteouts.sort(compareNames)) await sink.header(marker(WH + w));
    for (const { name, st } of others) {
      const childReal = real + '/' + name;
      const childRel = base + name;
      const h: TarHeader = { name: childRel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000), type: '0' };
      if (!st.isSymbolicLink()) h.xattrs = exportedXattrs(childReal);
      if (st.isDirectory()) {
        h.type = '5';
        h.name = childRel + '/';
        await sink.header(h);
        await walk(childReal, childRel);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          h.type = '1';
          h.linkname = first;
          await sink.header(h);
          continue;
        }
        if (st.nlink > 1) links.set(key, childRel);
        h.size = st.size;
        await sink.header(h);
        const fh = await fs.promises.open(encodePath(childReal), 'r');
        try {
          let left = st.size;
          while (left > 0) {
            const buf = Buffer.alloc(Math.min(left, 1 << 20));
            const { bytesRead } = await fh.read(buf, 0, buf.length, st.size - left);
            if (bytesRead === 0) {
              await sink.write(Buffer.alloc(left));
              break;
            } // shrank meanwhile: keep the header honest
            await sink.write(buf.subarray(0, bytesRead));
            left -= bytesRead;
          }
        } finally {
          await fh.close();
        }
        await sink.write(padding(st.size));
      } else if (st.isSymbolicLink()) {
        h.type = '2';
        h.linkname = readlinkName(childReal);
        await sink.header(h);
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        h.type = st.isCharacterDevice() ? '3' : '4';
        h.devmajor = Math.floor(st.rdev / 256) & 0xfff;
        h.devminor = (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00);
        await sink.header(h);
      } else if (st.isFIFO()) {
        h.type = '6';
        await sink.header(h);
      } // sockets cannot be archived (tar and moby skip them)
    }
  };
  try {
    await walk(dir, '');
  } catch (err) {
    await sink.end().catch(() => undefined);
    throw err;
  }
  return { diffId: await sink.end(), entries: sink.entries };
}

// ---------------------------------------------------------------- tar reading

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: [string, Buffer][];
  data: Buffer;
}

/** A NUL-terminated name field, decoded by decodeName (names are bytes). */
function cstr(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return decodeName(buf.subarray(off, end < 0 || end > off + len ? off + len : end));
}

function num(buf: Buffer, off: number, len: number): number {
  if (buf[off] & 0x80) {
    // base-256 (GNU/star), positive only
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

function parsePax(data: Buffer): Map<string, Buffer> {
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

/** Parse a tar (or gzip'd tar) into entries; PAX (x/g) and GNU long names (L/K) are folded in. */
export function readTar(raw: Buffer): TarEntry[] {
  const buf = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw) : raw;
  const out: TarEntry[] = [];
  let global = new Map<string, Buffer>();
  let local = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (sum !== num(h, 148, 8)) throw createError('EINVAL', 'import-layer', undefined, `bad tar header checksum at offset ${off}`);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    let size = num(h, 124, 12);
    if (local.has('size')) size = Number(local.get('size')!.toString());
    const dataStart = off + BLOCK;
    if (dataStart + size > buf.length) throw createError('EINVAL', 'import-layer', undefined, 'truncated tar archive');
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (type === 'x') {
      local = parsePax(data);
      continue;
    }
    if (type === 'g') {
      global = new Map([...global, ...parsePax(data)]);
      continue;
    }
    if (type === 'L') {
      longName = cstr(data, 0, data.length);
      continue;
    }
    if (type === 'K') {
      longLink = cstr(data, 0, data.length);
      continue;
    }
    const pax = new Map([...global, ...local]);
    const magic = h.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cstr(h, 345, 155) : '';
    let name = cstr(h, 0, 100);
    if (prefix) name = prefix + '/' + name;
    const paxPath = pax.get('path');
    const paxLink = pax.get('linkpath');
    name = (paxPath && decodeName(paxPath)) ?? longName ?? name;
    const linkname = (paxLink && decodeName(paxLink)) ?? longLink ?? cstr(h, 157, 100);
    const xattrs: [string, Buffer][] = [];
    for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs.push([k.slice('SCHILY.xattr.'.length), v]);
    const numOr = (k: string, v: number): number => (pax.has(k) ? Number(pax.get(k)!.toString()) : v);
    out.push({
      name,
      type,
      linkname,
      xattrs,
      data,
      mode: num(h, 100, 8) & 0o7777,
      uid: numOr('uid', num(h, 108, 8)),
      gid: numOr('gid', num(h, 116, 8)),
      mtime: numOr('mtime', num(h, 136, 12)),
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
    });
    local = new Map();
    longName = longLink = undefined;
  }
  return out;
}

// ---------------------------------------------------------------- import

export interface ImportOptions {
  /**
   * The stack this layer will go on top of. Layer tarballs often leave out unchanged
   * parent directories (umoci repack does); a directory created here only as a parent
   * then takes mode, owner, times and user xattrs from this overlay's merged directory,
   * as a copy-up would, instead of shadowing it with 0755 root. Without it: 0755 root.
   */
  parentsFrom?: Overlay;
}

export interface ImportResult {
  entries: number;
  whiteouts: number;
  opaques: number;
}

/** Components of a tar path, or an EACCES error when it would leave the layer directory. */
function safeComps(name: string, dir: string): string[] {
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw createError('EACCES', 'import-layer', name, `refusing entry that would land outside ${dir}`);
  return comps;
}

/** `p` itself, or a plain temporary name in its directory when its own name has escaped bytes. */
function beside(p: string): string {
  const slash = p.lastIndexOf('/');
  return hasEscapes(p.slice(slash + 1)) ? `${p.slice(0, slash)}/.ovlws-import-${process.pid}` : p;
}

function mknod(p: string, type: 'c' | 'b' | 'p', major = 0, minor = 0): void {
  mknodAt(p, type, major, minor, type === 'p' ? 'a fifo' : 'a device node');
}

/**
 * Unpack an OCI layer tarball (tar or tar.gz) into `dir` (created if missing) so that
 * it can serve as a lower layer in `format`. Whiteouts become character devices 0/0
 * (kernel) or stay `.wh.NAME` files (oci); `.wh..wh..opq` becomes the opaque xattr
 * (kernel) or stays (oci). Entries whose path has `..`, or that would go through a
 * symlink already unpacked, are refused (EACCES) before anything outside is touched.
 */
export function importLayer(file: string, dir: string, format: LayerFormat, opts: ImportOptions = {}): ImportResult {
  const entries = readTar(fs.readFileSync(file));
  fs.mkdirSync(dir, { recursive: true });
  const root = decodeName(fs.realpathSync(encodePath(fromPlainPath(dir)), { encoding: 'buffer' }));
  const layerFormat = whiteoutFormat(format.whiteouts, { userxattr: format.userxattr === true });
  const chown = process.getuid?.() === 0;
  const dirTimes: [string, number][] = [];
  const result: ImportResult = { entries: 0, whiteouts: 0, opaques: 0 };

  /** Real path for components, checking that no existing ancestor is a symlink or non-directory. */
  const place = (comps: string[], name: string, mkParents: boolean): string => {
    let cur = root;
    for (let i = 0; i < comps.length - 1; i++) {
      cur += '/' + comps[i];
      const st = lstatOrUndefined(cur);
      if (st?.isSymbolicLink())
        throw createError(
          'EACCES',
          'import-layer',
          name,
          `refusing entry through the symlink '${comps.slice(0, i + 1).join('/')}', it could land outside ${dir}`,
        );
      if (st && !st.isDirectory()) fs.rmSync(encodePath(cur), { force: true });
      if (!st || !st.isDirectory()) {
        if (!mkParents) throw createError('ENOENT', 'import-layer', name);
        fs.mkdirSync(encodePath(cur), { mode: 0o755 });
        implicitParent(cur, comps.slice(0, i + 1));
      }
    }
    return comps.length === 0 ? root : cur + '/' + comps[comps.length - 1];
  };
  const implicitParent = (real: string, comps: string[]): void => {
    let st;
    try {
      st = opts.parentsFrom?.statSync('/' + comps.join('/'), false);
    } catch {
      return;
    }
    if (!st || st.type !== 'd') return;
    if (chown) fs.lchownSync(encodePath(real), st.uid, st.gid);
    fs.chmodSync(encodePath(real), st.mode);
    for (const [k, v] of exportedXattrs(st.realPath)) setXattr(real, k, v);
    dirTimes.push([real, st.mtimeMs / 1000]);
  };
  const clear = (p: string, keepDir: boolean): void => {
    const st = lstatOrUndefined(p);
    if (!st) return;
    if (st.isDirectory()) {
      if (!keepDir) fs.rmSync(encodePath(p), { recursive: true, force: true });
    } else fs.unlinkSync(encodePath(p));
  };
  const meta = (p: string, e: TarEntry, isLink: boolean): void => {
    if (chown) fs.lchownSync(encodePath(p), e.uid, e.gid);
    if (!isLink) {
      fs.chmodSync(encodePath(p), e.mode); // after chown: chown clears setuid/setgid
      for (const [k, v] of e.xattrs) setXattr(p, k, v);
    }
  };

  for (const e of entries) {
    const comps = safeComps(e.name, dir);
    if (comps.length === 0) {
      // the layer root itself ("./")
      if (e.type === '5') {
        meta(root, e, false);
        dirTimes.push([root, e.mtime]);
      }
      continue;
    }
    const base = comps[comps.length - 1];
    const p = place(comps, e.name, true);
    result.entries++;
    if (base === OCI_OPAQUE) {
      result.opaques++;
      layerFormat.fromOciOpaque(path.dirname(p));
      continue;
    }
    if (base.startsWith(WH_META)) continue; // other AUFS metadata: not part of the filesystem
    if (base.startsWith(WH)) {
      result.whiteouts++;
      const name = base.slice(WH.length);
      const victim = path.dirname(p) + '/' + name;
      clear(victim, false);
      layerFormat.fromOciWhiteout(path.dirname(p), name, () => beside(victim));
      continue;
    }
    // A file or node whose own name has escaped bytes is made under a plain name beside it
    // (mknod and @napi-rs/xattr take strings), given its metadata, then renamed.
    const t = beside(p);
    switch (e.type) {
      case '5':
        clear(p, true);
        if (!lstatOrUndefined(p)) fs.mkdirSync(encodePath(p), { mode: 0o700 });
        meta(p, e, false);
        dirTimes.push([p, e.mtime]);
        continue;
      case '0':
      case '7':
        clear(p, false);
        fs.writeFileSync(encodePath(t), e.data, { mode: 0o600 });
        break;
      case '1': {
        const target = place(safeComps(e.linkname, dir), e.linkname, false);
        const tst = lstatOrUndefined(target);
        if (!tst || tst.isDirectory()) throw createError('EINVAL', 'import-layer', e.name, `hard link to a missing entry or directory '${e.linkname}'`);
        clear(p, false);
        fs.linkSync(encodePath(target), encodePath(p));
        continue; // shares the target's metadata
      }
      case '2':
        clear(p, false);
        fs.symlinkSync(encodePath(e.linkname), encodePath(p));
        meta(p, e, true);
        fs.lutimesSync(encodePath(p), e.mtime, e.mtime);
        continue;
      case '3':
      case '4':
      case '6':
        clear(p, false);
        mknod(t, e.type === '3' ? 'c' : e.type === '4' ? 'b' : 'p', e.devmajor, e.devminor);
        break;
      default:
        continue; // unknown/unsupported typeflags are skipped, like moby does
    }
    meta(t, e, false);
    fs.utimesSync(encodePath(t), e.mtime, e.mtime);
    if (t !== p) fs.renameSync(encodePath(t), encodePath(p));
  }
  // Directory times last, deepest first: creating children changed them.
  for (const [p, t] of dirTimes.reverse()) fs.utimesSync(encodePath(p), t, t);
  return result;
}
