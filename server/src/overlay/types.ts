/** Public types of the overlay engine. Plain Node: no vscode, no LSP. */

/** Whiteout/opaque marker format on disk. */
export type WhiteoutFormat = 'kernel' | 'oci';

/** What a user or caller gives to describe a stack. */
export interface StackSpec {
  /** Lower layer directories, TOP-MOST FIRST (like lowerdir=). */
  lower: string[];
  /** Writable upper directory. Without it the overlay is read-only (EROFS). */
  upper?: string;
  /** Work directory: empty, on the same filesystem as upper. Required with upper. */
  work?: string;
  /** Whiteout format; 'auto' (default) detects from layer contents, kernel when nothing tells. */
  whiteouts?: WhiteoutFormat | 'auto';
  /** Use user.overlay.* xattrs instead of trusted.overlay.* (mount -o userxattr). */
  userxattr?: boolean;
  /**
   * Merged directory of a live kernel mount of this stack, when known. Required when a
   * mounted kernel overlay has `upper` as its upperdir: the caller writes through the
   * mount (the server does); Overlay.open refuses such a stack without it.
   */
  merged?: string;
}

/** Entry type letters, as `ls -l`/find -printf %y print them. */
export type EntryType = 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's';

/** Where an entry is served from: 'upper' or the index into StackSpec.lower. */
export type LayerRef = 'upper' | number;

export interface OverlayStat {
  type: EntryType;
  size: number;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeMs: number;
  birthtimeMs: number;
  rdev: number;
  layer: LayerRef;
  /** Real path in the layer that serves this entry. */
  realPath: string;
}

export interface DirEntry {
  name: string;
  type: EntryType;
}

export interface ResolveResult {
  path: string;
  layer: LayerRef;
  realPath: string;
  type: EntryType;
}

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

export interface WriteOptions {
  /** Create the file if missing (default true). */
  create?: boolean;
  /** Replace an existing file (default true). With create && !overwrite: exclusive. */
  overwrite?: boolean;
  /** Mode for a newly created file (default 0o666 & ~umask). */
  mode?: number;
}

export interface CopyUpEvent {
  /** Overlay path, absolute from the overlay root. */
  path: string;
  /** Real path of the lower copy that is now stale. */
  lowerPath: string;
  /** Real path of the upper copy. */
  upperPath: string;
  /** Lower layer index that served the file before. */
  fromLayer: number;
}

export interface LayerInfo {
  layer: LayerRef;
  path: string;
  writable: boolean;
}
