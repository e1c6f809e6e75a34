/**
 * The one interface of an on-disk format of whiteouts and opaque directories. Everything the
 * engine, the watcher and the OCI layer code know about a format goes through it: a format is
 * one module exporting a FormatModule, registered in formats/index.ts.
 */
import type * as fs from 'node:fs';
import type { LayerStat } from '../lstat';

/** A directory of one layer: its real path and its lstat. (A lookup Hit is one.) */
export interface LayerDir {
  real: string;
  st: LayerStat;
}

/**
 * What one raw entry of a layer directory is in a merged listing:
 * - undefined: an entry to list (its type from the dirent);
 * - LayerStat: an entry to list, whose lstat the format already took;
 * - a string: a whiteout, not listed, that hides this name in the layers below;
 * - null: the format's own bookkeeping (or gone meanwhile), neither listed nor hiding.
 */
export type EntryVerdict = undefined | LayerStat | string | null;

/** A raw change seen in a layer, by the watcher. */
export type RawEventKind = 'add' | 'change' | 'unlink' | 'whiteout' | 'opaque';

/** A raw change as the merged view sees it: a whiteout file names the path it hides, an opaque marker its directory. */
export interface RawEvent {
  path: string;
  kind: RawEventKind;
}

/**
 * A temporary path on the layer's filesystem with a plain (UTF-8) name, for things made
 * aside and renamed into place (the work directory's temp names, or a name beside).
 */
export type Scratch = () => string;

/** One format as one stack (or one layer directory) uses it. */
export interface Format {
  /** The name users give it ("kernel", "oci"). */
  readonly name: string;

  // ---------------------------------------------------------------- reading a layer (lookup, readdir, diff, export)

  /** Is `name` in layer directory `dir` whited out? `st` is the lstat of `real` (dir/name), undefined when absent. */
  whitesOut(dir: LayerDir, name: string, st: LayerStat | undefined, real: string): boolean;
  /** Does directory `child` (named `name` in `dir`) end the merge with same-named directories below (opaque)? */
  stopsMerge(dir: LayerDir, child: LayerDir, name: string): boolean;
  /** Is the directory at `dirReal` marked opaque? */
  isOpaque(dirReal: string): boolean;
  /** The classifier of the raw entries of layer directory `dir` (one per listing). */
  entries(dir: LayerDir): (d: fs.Dirent) => EntryVerdict;

  // ---------------------------------------------------------------- writing the upper layer

  /** Is there a whiteout for `name` in upper directory `dir`? */
  hasWhiteout(dir: string, name: string): boolean;
  /** Put a whiteout for `name` in upper directory `dir`, in place of any non-directory there. */
  whiteout(dir: string, name: string, scratch: Scratch): void;
  /** Remove a whiteout for `name` from upper directory `dir`, if there is one. */
  clearWhiteout(dir: string, name: string): void;
  /** Rename the non-directory `from` to dir/name, over a whiteout of that name if any (none remains). */
  renameOver(from: string, dir: string, name: string): void;
  /** Make an opaque directory dir/name in place of the whiteout there (it must not merge with what was deleted). */
  mkdirOverWhiteout(dir: string, name: string, mode: number, scratch: Scratch): void;
  /** Mark an upper directory opaque. */
  setOpaque(dirReal: string): void;
  /** Remove every whiteout and marker inside an upper directory that is about to go. */
  clearInside(dirReal: string): void;

  // ---------------------------------------------------------------- watching

  /** What a raw watcher event at `path` (real path `real`, in the upper layer or not) means. */
  classifyEvent(path: string, kind: 'add' | 'change' | 'unlink', real: string, upper: boolean): RawEvent;

  // ---------------------------------------------------------------- from OCI layer tarballs (export uses the reading half)

  /** An OCI whiteout entry (`.wh.NAME`) unpacked into layer directory `dir`; whatever was at `name` is gone already. */
  fromOciWhiteout(dir: string, name: string, scratch: Scratch): void;
  /** An OCI opaque marker (`.wh..wh..opq`) unpacked into layer directory `dirReal`. */
  fromOciOpaque(dirReal: string): void;
}

export interface FormatOptions {
  /** Kernel format: markers in user.overlay.* (mount -o userxattr) instead of trusted.overlay.*. */
  userxattr: boolean;
}

/** A format module: its name, how to recognise a layer written in it, and how to make one for a stack. */
export interface FormatModule {
  readonly name: string;
  /** One line for help texts and settings. */
  readonly description: string;
  /** Does this raw entry of directory `dir` show that its layer is in this format (auto-detection)? */
  detect(d: fs.Dirent, dir: string): boolean;
  create(opts: FormatOptions): Format;
}
