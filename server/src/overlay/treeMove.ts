/**
 * Moving and copying trees in the merged view: rename (files and pure-upper directories in one
 * rename(2) in the upper layer; a directory with lower parts entry by entry, as mv does after
 * the kernel's EXDEV) and copy (as cp -a), with their checks in the kernel's order.
 */
import * as fs from 'node:fs';
import { copyMetadata } from './copyUp';
import { createError } from './errors';
import type { Entry, Found, LayerView } from './lookup';
import { encodePath } from './names';
import { splitRequestPath } from './paths';
import { W, checkAccess } from './permission';
import { checkCreateIn, checkRemoveFrom, nameOf, type Upper } from './upper';

/**
 * Rename `s` to exactly `d` (like `mv -T`; `dst` is the path as requested); `overwrite: false` refuses an existing `d`.
 * `copyBelow`: where the kernel answers EXDEV, copy what is below instead of moving it entry by
 * entry — what `mv SRC DST` without -T does when DST does not exist (coreutils 9.1).
 */
export async function renameTree(up: Upper, s: Found, d: Entry, src: string, dst: string, opts: { overwrite?: boolean; copyBelow?: boolean }): Promise<void> {
  if (s.comps.length === 0 || d.comps.length === 0) throw createError('EBUSY', 'rename', src, undefined, dst);
  if (d.path === s.path) return;
  // In the kernel's order: RENAME_NOREPLACE's EEXIST, then the source above the target
  // (EINVAL), then the target above the source (ENOTEMPTY: it holds the source), then permissions.
  if (d.top && opts.overwrite === false) throw createError('EEXIST', 'rename', src, undefined, dst);
  if (d.path.startsWith(s.path + '/')) throw createError('EINVAL', 'rename', src, undefined, dst);
  if (s.path.startsWith(d.path + '/')) throw createError('ENOTEMPTY', 'rename', src, undefined, dst);
  const sDir = s.top.st.isDirectory();
  checkRemoveFrom(s, 'rename', src);
  if (d.top) checkRemoveFrom(d, 'rename', dst);
  else checkCreateIn(d, 'rename', dst);
  // A directory moved to another parent has its '..' rewritten: write on it.
  if (sDir && s.parent[0]?.real !== d.parent[0]?.real) checkAccess(s.top.st, W, 'rename', src);
  if (d.top) {
    const dDir = d.top.st.isDirectory();
    if (sDir && !dDir) throw createError('ENOTDIR', 'rename', src, undefined, dst);
    if (!sDir && dDir) throw createError('EISDIR', 'rename', src, undefined, dst);
    if (dDir && up.view.readdir(d).length > 0) throw createError('ENOTEMPTY', 'rename', src, undefined, dst);
  }
  await move(up, s, d, dst, false, opts.copyBelow ?? false);
}

/**
 * Move an existing `s` to the absent-or-replaceable `d` (already validated). Files and pure-upper
 * directories are renamed in upper. A directory with lower parts gets EXDEV from the kernel, and
 * mv then does what this does: mkdir the target, move each entry into it the same way (so entries
 * the kernel can rename keep everything, e.g. an opaque pure-upper subdirectory), copy the
 * directory's metadata and remove the source. With `copyBelow` the entries are copied instead
 * (`copying`: a directory is made anew even where the kernel could rename it, so an opaque
 * pure-upper subdirectory loses its marker, as a copy through the mount does).
 */
async function move(up: Upper, s: Found, d: Entry, dstRequest?: string, copying = false, copyBelow = false): Promise<void> {
  const { copyUp, format, view } = up;
  const sName = nameOf(s);
  const dName = nameOf(d);
  const srcLowerPositive = view.lowerPositive(s);
  if (!s.top.st.isDirectory()) {
    const srcUpper = await copyUp.file(s);
    format.renameOver(srcUpper, up.parentDir(d), dName);
    if (srcLowerPositive) format.whiteout(up.parentDir(s), sName, up.scratch);
    return;
  }
  if (s.top.layer.ref === 'upper' && s.merge.length === 1 && !copying) {
    // A pure-upper directory: one rename.
    const dParent = up.dirEntry(d.comps.slice(0, -1), 'rename');
    const dDir = copyUp.dir(dParent);
    const dest = dDir + '/' + dName;
    if (d.top?.layer.ref === 'upper') {
      format.clearInside(d.top.real);
      fs.rmdirSync(encodePath(d.top.real));
    }
    format.clearWhiteout(dDir, dName);
    const wasOpaque = format.isOpaque(s.top.real);
    fs.renameSync(encodePath(s.top.real), encodePath(dest));
    // The kernel makes a pure-upper directory opaque when it moves into a merged parent.
    if (!wasOpaque && dParent.merge.some((h) => h.layer.ref !== 'upper')) format.setOpaque(dest);
    if (srcLowerPositive) format.whiteout(up.parentDir(s), sName, up.scratch);
    return;
  }
  // A directory with lower parts: the kernel answers EXDEV and mv moves entry by entry.
  if (d.top) up.remove(d);
  const target = up.entry(d.path, false, 'rename');
  const real = up.makeDir(target, 0o700);
  for (const child of view.readdir(s)) {
    const cs = up.found(view.resolve([...s.comps, child.name], false, 'rename', s.path), 'rename');
    // mv names each entry by the destination path it was given, looked up again: a
    // symlink on that path which this move has taken away (it was inside the source)
    // ends the move there with ENOENT, as on a kernel mount.
    const cdRequest = dstRequest === undefined ? undefined : dstRequest + '/' + child.name;
    const cd =
      cdRequest === undefined
        ? view.resolve([...target.comps, child.name], false, 'rename', target.path)
        : view.resolve(splitRequestPath(cdRequest, 'rename'), false, 'rename', cdRequest);
    await move(up, cs, cd, cdRequest, copyBelow, copyBelow);
  }
  copyMetadata(s.top.real, s.top.st, real);
  up.remove(up.found(up.entry(s.path, false, 'rename'), 'rename'));
}

/** Copy `s` (file, directory or symlink — a symlink stays a symlink) to `d` as VS Code's copy does (`src`, `dst`: the paths as requested). */
export async function copyTree(up: Upper, s: Found, d: Entry, src: string, dst: string, opts: { overwrite?: boolean }): Promise<void> {
  if (d.comps.length === 0) throw createError('EBUSY', 'copyfile', src, undefined, dst);
  // Into itself or its own subtree (the root contains everything): cp refuses, else it recurses until ENAMETOOLONG.
  if (s.comps.length === 0 || d.path === s.path || d.path.startsWith(s.path + '/'))
    throw createError('EINVAL', 'copyfile', src, 'cannot copy a directory into itself', dst);
  if (d.top) {
    if (opts.overwrite === false) throw createError('EEXIST', 'copyfile', src, undefined, dst);
    checkRemoveFrom(d, 'copyfile', dst);
    up.remove(d);
    d = up.entry(dst, false, 'copyfile');
  }
  await copy(up, s, d);
}

/**
 * Put back at `d` (absent: an opaque directory above hides it) a copy of `s`, the same path in
 * `lowers` (the stack without its upper layer): what the lower layers hold there, merged.
 */
export async function restoreLowerCopy(up: Upper, lowers: LayerView, s: Found, d: Entry): Promise<void> {
  await copy(up, s, d, lowers);
}

/** Create `d` (absent) as a copy of `s` (an entry of `from`) with data, mode, owner, xattrs and times (as cp -a / mv do). */
async function copy(up: Upper, s: Found, d: Entry, from: LayerView = up.view): Promise<void> {
  const top = s.top;
  if (top.st.isDirectory()) {
    const real = up.makeDir(d, 0o700);
    for (const child of from.readdir(s)) {
      const cs = up.found(from.resolve([...s.comps, child.name], false, 'copy', s.path), 'copy');
      const cd = up.view.resolve([...d.comps, child.name], false, 'copy', d.path);
      await copy(up, cs, cd, from);
    }
    copyMetadata(top.real, top.st, real);
    return;
  }
  await up.placeNew(d, async (tmp) => {
    if (top.st.isFile()) await fs.promises.copyFile(encodePath(top.real), encodePath(tmp), fs.constants.COPYFILE_FICLONE);
    else if (top.st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(encodePath(top.real), { encoding: 'buffer' }), encodePath(tmp));
    else throw createError('ENOTSUP', 'copy', s.path, 'cannot copy a device, FIFO or socket');
    copyMetadata(top.real, top.st, tmp);
  });
}
