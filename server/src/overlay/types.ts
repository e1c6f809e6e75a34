/** Public types of the overlay engine. Plain Node: no vscode, no LSP. */

export type { ChangeKind, EntryType, LayerRef, StackSpec, WhiteoutFormat } from '../../../shared/src/types';
import type { ChangeKind, EntryType, LayerRef } from '../../../shared/src/types';

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
  kind: ChangeKind;
  path: string;
  /** Type of the entry now (A and C). */
  type?: EntryType;
  /** The lower layer whose copy the change replaces or hides (C and D). */
  lowerLayer?: number;
  /** For a `D`: the opaque directory that hides this lower entry (no whiteout of its own). */
  hiddenBy?: string;
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
