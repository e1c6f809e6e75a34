/**
 * A layer directory (an upper, or a lower to build a base image) as an OCI image-spec layer
 * changeset: files, directories, symlinks, hard links (typeflag 1), devices and FIFOs, mode,
 * uid/gid, mtime (whole seconds, as moby writes them), user.* xattrs (SCHILY.xattr PAX
 * records), and whiteouts in OCI form whatever format the layer uses on disk: in each
 * directory `.wh..wh..opq` first when it is opaque, then the `.wh.NAME` whiteouts, then the
 * other entries, by name. Entries are relative paths without a leading `./`, directories end
 * in `/`; the root directory itself is not written.
 */
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { createError } from '../errors';
import { whiteoutFormat } from '../formats';
import { OPAQUE, WH } from '../formats/oci';
import { lstatOrUndefined, type LayerStat } from '../lstat';
import { compareNames, encodePath, fromPlainPath, readdirEntries, readlinkName } from '../names';
import type { Overlay } from '../overlay';
import { getXattr, listXattrs } from '../xattr';
import type { TarHeader } from './tarHeader';
import { TarWriter, type TarDigests } from './tarWriter';

export interface LayerFormat {
  /** On-disk whiteout format of the layer directory (a registered format's name). */
  whiteouts: string;
  /** Kernel format: markers in user.overlay.* instead of trusted.overlay.*. */
  userxattr?: boolean;
}

export interface ExportOptions {
  /** gzip the tarball; default: true when the file name ends in .gz or .tgz. */
  gzip?: boolean;
}

export interface ExportResult extends TarDigests {
  /** Number of tar entries written (PAX headers not counted). */
  entries: number;
}

/** user.* xattrs other than overlay markers, sorted by name. */
export function exportedXattrs(real: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (const name of listXattrs(real).sort()) {
    if (!name.startsWith('user.') || name.startsWith('user.overlay.')) continue;
    const v = getXattr(real, name);
    if (v !== undefined) out.push([name, v]);
  }
  return out;
}

/** Export the upper layer of an open overlay as an OCI layer tarball. EROFS without an upper. */
export async function exportLayer(ov: Overlay, file: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (!ov.stack.upper) throw createError('EROFS', 'export', file, 'the overlay has no upper layer to export');
  return exportLayerDir(ov.stack.upper, file, { whiteouts: ov.stack.whiteouts, userxattr: ov.stack.userxattr }, opts);
}

/** Export a layer directory as an OCI layer tarball at `file` (removed again when the export fails). */
export async function exportLayerDir(layerDir: string, file: string, format: LayerFormat, opts: ExportOptions = {}): Promise<ExportResult> {
  fs.statSync(encodePath(fromPlainPath(layerDir))); // ENOENT/ENOTDIR early, before the output file is created
  const out = fs.createWriteStream(file, { mode: 0o644 });
  try {
    return await writeLayer(layerDir, out, format, { gzip: opts.gzip ?? /\.(t?gz)$/.test(file) });
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw err;
  }
}

/** Write a layer directory as a tar (gzip'd if asked) into `out`, hashing it on the way. */
export async function writeLayer(layerDir: string, out: Writable, format: LayerFormat, opts: { gzip: boolean }): Promise<ExportResult> {
  const dir = fromPlainPath(layerDir);
  const layerFormat = whiteoutFormat(format.whiteouts, { userxattr: format.userxattr === true });
  const tar = new TarWriter(out, opts);
  const links = new Map<string, string>(); // dev:ino → first archived path
  const walk = async (real: string, rel: string): Promise<void> => {
    const dirSt = fs.lstatSync(encodePath(real));
    const verdict = layerFormat.entries({ real, st: dirSt });
    const whiteouts: string[] = [];
    const others: { name: string; st: LayerStat }[] = [];
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
    if (layerFormat.isOpaque(real)) await tar.header(marker(OPAQUE));
    for (const w of whiteouts.sort(compareNames)) await tar.header(marker(WH + w));
    for (const { name, st } of others) {
      const childReal = real + '/' + name;
      const childRel = base + name;
      const h: TarHeader = { name: childRel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000), type: '0' };
      if (!st.isSymbolicLink()) h.xattrs = exportedXattrs(childReal);
      if (st.isDirectory()) {
        await tar.header({ ...h, type: '5', name: childRel + '/' });
        await walk(childReal, childRel);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          await tar.header({ ...h, type: '1', linkname: first });
          continue;
        }
        if (st.nlink > 1) links.set(key, childRel);
        await tar.file({ ...h, size: st.size }, fileData(childReal, st.size));
      } else if (st.isSymbolicLink()) {
        await tar.header({ ...h, type: '2', linkname: readlinkName(childReal) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const devmajor = Math.floor(st.rdev / 256) & 0xfff;
        const devminor = (st.rdev & 0xff) | (Math.floor(st.rdev / 4096) & 0xfff00);
        await tar.header({ ...h, type: st.isCharacterDevice() ? '3' : '4', devmajor, devminor });
      } else if (st.isFIFO()) {
        await tar.header({ ...h, type: '6' });
      } // sockets cannot be archived (tar and moby skip them)
    }
  };
  try {
    await walk(dir, '');
  } catch (err) {
    await tar.abort();
    throw err;
  }
  return { ...(await tar.end()), entries: tar.entries };
}

/** Up to `size` bytes of a file, 1 MiB at a time. */
async function* fileData(real: string, size: number): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(encodePath(real), 'r');
  try {
    let at = 0;
    while (at < size) {
      const buf = Buffer.allocUnsafe(Math.min(size - at, 1 << 20));
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) return;
      at += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
