/**
 * The kernel's format (Linux overlayfs): a whiteout is a character device 0/0 at the deleted
 * name (or, in a directory whose overlay.opaque is "x", a zero-size file with an
 * overlay.whiteout xattr); an opaque directory has overlay.opaque="y". The xattrs are
 * trusted.overlay.*, or user.overlay.* with userxattr (a property of the instance).
 */
import * as fs from 'node:fs';
import { lstatOrUndefined, type LayerStat } from '../lstat';
import { mknod } from '../mknod';
import { encodePath, readdirEntries } from '../names';
import { lookupTuning } from '../tuning';
import { getXattr, setXattr } from '../xattr';
import type { EntryVerdict, FormatOptions, LayerDir, RawEvent, Scratch, Format, FormatModule } from './format';

/** The kernel's whiteout: a character device 0/0. */
export function isWhiteoutDevice(st: LayerStat): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Is there a whiteout device at `real`? */
export function whiteoutDeviceAt(real: string): boolean {
  try {
    const st = lstatOrUndefined(real);
    return st !== undefined && isWhiteoutDevice(st);
  } catch {
    return false;
  }
}

/** Make a whiteout device at dir/name: at `scratch()` first, renamed over whatever non-directory is there (atomic). */
export function writeWhiteoutDevice(dir: string, name: string, scratch: Scratch): void {
  const dest = dir + '/' + name;
  const tmp = scratch();
  mknod(tmp, 'c', 0, 0, 'a kernel whiteout (character device 0/0)');
  if (tmp !== dest) fs.renameSync(encodePath(tmp), encodePath(dest));
}

class KernelFormat implements Format {
  readonly name = 'kernel';
  private readonly prefix: string;
  /** overlay.opaque of directories, while their inode and ctime stay (an xattr change changes the ctime). */
  private readonly opaqueCache = new Map<string, { ino: number; ctimeMs: number; value: string }>();

  constructor(opts: FormatOptions) {
    this.prefix = opts.userxattr ? 'user.overlay.' : 'trusted.overlay.';
  }

  /** overlay.opaque of a directory: 'y' opaque, 'x' holds xattr whiteouts, '' neither. */
  private opaqueValue(dirReal: string): string {
    const v = getXattr(dirReal, this.prefix + 'opaque');
    return v ? v.toString() : '';
  }

  /**
   * opaqueValue() of a layer directory, remembered while its inode and ctime stay the same,
   * so a fresh lstat of an upper directory needs no getxattr when nothing changed. Only
   * answers for a ctime older than lookupTuning.racyMs are kept.
   */
  private opaqueOf(dir: LayerDir): string {
    const c = this.opaqueCache.get(dir.real);
    if (c !== undefined && c.ino === dir.st.ino && c.ctimeMs === dir.st.ctimeMs) return c.value;
    const value = this.opaqueValue(dir.real);
    if (Date.now() - dir.st.ctimeMs < lookupTuning.racyMs) return value;
    if (this.opaqueCache.size >= lookupTuning.opaqueDirs) this.opaqueCache.clear();
    this.opaqueCache.set(dir.real, { ino: dir.st.ino, ctimeMs: dir.st.ctimeMs, value });
    return value;
  }

  /** A whiteout by stat: the device, or (in a directory with xattr whiteouts) a zero-size file marked so. */
  private isWhiteoutStat(st: LayerStat, real: string, xattrWhiteouts: boolean): boolean {
    if (isWhiteoutDevice(st)) return true;
    if (xattrWhiteouts && st.isFile() && st.size === 0) return getXattr(real, this.prefix + 'whiteout') !== undefined;
    return false;
  }

  whitesOut(dir: LayerDir, _name: string, st: LayerStat | undefined, real: string): boolean {
    if (st === undefined) return false;
    return this.isWhiteoutStat(st, real, st.isFile() && st.size === 0 && this.opaqueOf(dir) === 'x');
  }

  stopsMerge(_dir: LayerDir, child: LayerDir): boolean {
    return this.opaqueOf(child) === 'y';
  }

  isOpaque(dirReal: string): boolean {
    return this.opaqueValue(dirReal) === 'y';
  }

  entries(dir: LayerDir): (d: fs.Dirent) => EntryVerdict {
    const xattrWhiteouts = this.opaqueOf(dir) === 'x';
    return (d) => {
      if (!d.isCharacterDevice() && !(xattrWhiteouts && d.isFile())) return undefined;
      const real = dir.real + '/' + d.name;
      const st = lstatOrUndefined(real);
      if (!st) return null;
      return this.isWhiteoutStat(st, real, xattrWhiteouts) ? d.name : st;
    };
  }

  hasWhiteout(dir: string, name: string): boolean {
    const st = lstatOrUndefined(dir + '/' + name);
    return st !== undefined && isWhiteoutDevice(st);
  }

  whiteout(dir: string, name: string, scratch: Scratch): void {
    writeWhiteoutDevice(dir, name, scratch);
  }

  clearWhiteout(dir: string, name: string): void {
    if (this.hasWhiteout(dir, name)) fs.unlinkSync(encodePath(dir + '/' + name));
  }

  renameOver(from: string, dir: string, name: string): void {
    fs.renameSync(encodePath(from), encodePath(dir + '/' + name)); // atomically replaces a whiteout
  }

  mkdirOverWhiteout(dir: string, name: string, mode: number, scratch: Scratch): void {
    const dest = dir + '/' + name;
    const tmp = scratch();
    fs.mkdirSync(encodePath(tmp), { mode });
    this.setOpaque(tmp);
    fs.unlinkSync(encodePath(dest));
    fs.renameSync(encodePath(tmp), encodePath(dest));
  }

  setOpaque(dirReal: string): void {
    setXattr(dirReal, this.prefix + 'opaque', 'y');
  }

  clearInside(dirReal: string): void {
    for (const d of readdirEntries(dirReal)) {
      const p = encodePath(dirReal + '/' + d.name);
      if (d.isCharacterDevice() && fs.lstatSync(p).rdev === 0) fs.unlinkSync(p);
    }
  }

  classifyEvent(path: string, kind: 'add' | 'change' | 'unlink', real: string, upper: boolean): RawEvent {
    return { path, kind: kind === 'add' && upper && whiteoutDeviceAt(real) ? 'whiteout' : kind };
  }

  fromOciWhiteout(dir: string, name: string, scratch: Scratch): void {
    writeWhiteoutDevice(dir, name, scratch);
  }

  fromOciOpaque(dirReal: string): void {
    this.setOpaque(dirReal);
  }
}

export const kernel: FormatModule = {
  name: 'kernel',
  description: 'Character device 0/0 and trusted.overlay.opaque xattrs (Linux overlayfs).',
  detect: (d, dir) => d.isCharacterDevice() && whiteoutDeviceAt(dir + '/' + d.name),
  create: (opts) => new KernelFormat(opts),
};
