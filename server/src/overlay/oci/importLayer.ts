/**
 * An OCI layer blob (tar, tar+gzip, tar+zstd; from a file or any stream) unpacked into a
 * directory that can serve as a lower layer in a chosen whiteout format, streaming: one entry
 * at a time, file data written as it arrives, so memory stays bounded whatever the layer's
 * size and the server answers other requests meanwhile. Entries with `..`, absolute names,
 * hard links to outside, or paths through a symlink already unpacked are refused (EACCES)
 * before anything outside is touched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createError } from '../errors';
import { whiteoutFormat, type Format } from '../formats';
import { OPAQUE, WH, WH_META } from '../formats/oci';
import { lstatOrUndefined } from '../lstat';
import { mknod } from '../mknod';
import { decodeName, encodePath, fromPlainPath, hasEscapes } from '../names';
import type { Overlay } from '../overlay';
import { setXattr } from '../xattr';
import { layerBytes, type LayerSource } from './compression';
import { exportedXattrs, type LayerFormat } from './exportLayer';
import { readTarEntries, type TarEntry } from './tarReader';

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

function refuse(name: string, dir: string, why: string): Error {
  return createError('EACCES', 'import-layer', name, `refusing entry ${why}, it would land outside ${dir}`);
}

/** Components of an archive path, or EACCES when it is absolute or has `..`. */
function safeComps(name: string, dir: string): string[] {
  if (name.startsWith('/')) throw refuse(name, dir, 'with an absolute name');
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw refuse(name, dir, "with '..' in its name");
  return comps;
}

/** `p` itself, or a plain temporary name in its directory when its own name has escaped bytes. */
function beside(p: string): string {
  const slash = p.lastIndexOf('/');
  return hasEscapes(p.slice(slash + 1)) ? `${p.slice(0, slash)}/.ovlws-import-${process.pid}` : p;
}

/** Write an entry's data to a new file at `p`. */
async function writeData(p: string, e: TarEntry): Promise<void> {
  const fh = await fs.promises.open(encodePath(p), 'w', 0o600);
  try {
    for await (const c of e.body()) await fh.write(c);
  } finally {
    await fh.close();
  }
}

/**
 * Unpack an OCI layer into `dir` (new, or empty) so that it can serve as a lower layer in
 * `format`; on any error `dir` is left as it was. OCI whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) are written in
 * that format (formats/: a character device 0/0 and the opaque xattr for kernel; as they are
 * for oci).
 */
export async function importLayer(source: LayerSource, dir: string, format: LayerFormat, opts: ImportOptions = {}): Promise<ImportResult> {
  const layerFormat = whiteoutFormat(format.whiteouts, { userxattr: format.userxattr === true });
  const target = fromPlainPath(path.resolve(dir));
  const there = lstatOrUndefined(target);
  if (there && !there.isDirectory()) throw createError('ENOTDIR', 'import-layer', dir, 'the layer directory is not a directory');
  if (there && fs.readdirSync(encodePath(target)).length > 0) throw createError('ENOTEMPTY', 'import-layer', dir, 'the layer directory must be new or empty');
  // Unpacked beside it and renamed into place at the end: a failed import leaves nothing.
  fs.mkdirSync(encodePath(path.dirname(target)), { recursive: true });
  const tmp = `${target}.ovlws-import-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  fs.mkdirSync(encodePath(tmp));
  try {
    const result = await unpack(source, tmp, dir, layerFormat, opts);
    if (there) fs.rmdirSync(encodePath(target));
    fs.renameSync(encodePath(tmp), encodePath(target));
    return result;
  } catch (err) {
    fs.rmSync(encodePath(tmp), { recursive: true, force: true });
    throw err;
  }
}

/** Unpack into the new directory `into`; `dir` names the layer directory in messages. */
async function unpack(source: LayerSource, into: string, dir: string, layerFormat: Format, opts: ImportOptions): Promise<ImportResult> {
  const { bytes } = await layerBytes(source);
  const root = decodeName(fs.realpathSync(encodePath(into), { encoding: 'buffer' }));
  const chown = process.getuid?.() === 0;
  const dirTimes: [string, number][] = [];
  const result: ImportResult = { entries: 0, whiteouts: 0, opaques: 0 };

  /** Real path for components, checking that no existing ancestor is a symlink or non-directory. */
  const place = (comps: string[], name: string, mkParents: boolean): string => {
    let cur = root;
    for (let i = 0; i < comps.length - 1; i++) {
      cur += '/' + comps[i];
      const st = lstatOrUndefined(cur);
      if (st?.isSymbolicLink()) throw refuse(name, dir, `through the symlink '${comps.slice(0, i + 1).join('/')}'`);
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

  for await (const e of readTarEntries(bytes)) {
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
    if (base === OPAQUE) {
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
        await writeData(t, e);
        break;
      case '1': {
        if (e.linkname.startsWith('/')) throw refuse(e.name, dir, `with a hard link to the absolute name '${e.linkname}'`);
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
      case '6': {
        clear(p, false);
        const type = e.type === '3' ? 'c' : e.type === '4' ? 'b' : 'p';
        mknod(t, type, e.devmajor, e.devminor, type === 'p' ? 'a fifo' : 'a device node');
        break;
      }
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
