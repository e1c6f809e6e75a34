/** lstat of layer paths: "not there" is undefined (it falls through to the next layer), anything else is an answer. */
import * as fs from 'node:fs';
import { isErrno } from './errors';
import { encodePath } from './names';
import type { EntryType } from './types';

/**
 * What the engine keeps of an lstat: the numbers and the type tests of fs.Stats, which has this
 * shape too (either may be passed). Lookups cache one per layer copy, and Node 20's fs.Stats
 * carries four Date objects besides: ~790 bytes each against ~220 for a LayerStat (issue 17:
 * the lookup caches of a 1 000 000-entry stack held most of the server's live heap in them).
 */
export interface LayerStat {
  readonly dev: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly ino: number;
  readonly size: number;
  /** 512-byte blocks allocated (fewer than size / 512: a sparse file). */
  readonly blocks: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fs.constants;

/** The compact LayerStat of an fs.Stats. */
class CompactStat implements LayerStat {
  readonly dev: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly ino: number;
  readonly size: number;
  readonly blocks: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;

  constructor(st: fs.Stats) {
    this.dev = st.dev;
    this.mode = st.mode;
    this.nlink = st.nlink;
    this.uid = st.uid;
    this.gid = st.gid;
    this.rdev = st.rdev;
    this.ino = st.ino;
    this.size = st.size;
    this.blocks = st.blocks;
    this.atimeMs = st.atimeMs;
    this.mtimeMs = st.mtimeMs;
    this.ctimeMs = st.ctimeMs;
    this.birthtimeMs = st.birthtimeMs;
  }

  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === S_IFIFO;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === S_IFSOCK;
  }
}

/** lstat of `p` as a LayerStat; errors as fs.lstatSync throws them (ENOENT included). */
export function layerLstat(p: string): LayerStat {
  return new CompactStat(fs.lstatSync(encodePath(p)));
}

export function lstatOrUndefined(p: string): LayerStat | undefined {
  try {
    // No Error built for the common miss (most names are absent from most layers).
    const st = fs.lstatSync(encodePath(p), { throwIfNoEntry: false });
    return st === undefined ? undefined : new CompactStat(st);
  } catch (err) {
    // Only "not there" falls through to the next layer; EACCES, EIO... are real answers.
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

export function typeOf(st: LayerStat | fs.Dirent): EntryType {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}
