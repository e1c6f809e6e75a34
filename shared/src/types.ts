/**
 * The plain data types both the engine and the protocol speak: one declaration each.
 * No imports: the engine (server/src/overlay) may import this file and nothing else of
 * shared/.
 */

/**
 * Whiteout/opaque marker format on disk: the name of a format the engine registers
 * (server/src/overlay/formats). Built in: 'kernel' and 'oci', the choices the settings and the
 * protocol offer.
 */
export type WhiteoutFormat = string;

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

/** A change of the upper layer against the lowers, as `docker diff` prints it: Added, Changed, Deleted. */
export type ChangeKind = 'A' | 'C' | 'D';

/**
 * A process that still reads the stale copy of a copied-up file: it has the lower file open
 * or mapped, or — through a kernel overlay mount (a container's, or the stack's own live
 * mount) — the merged file as it was before the copy-up.
 */
export interface Holder {
  pid: number;
  /**
   * 'open': a file descriptor refers to it (since Linux 4.19 read(2) through an overlay mount
   * follows a copy-up, but what the process read before stays old; an fd on the lower file
   * itself never follows); 'mapped': mapped into memory (mapped pages keep the lower data).
   * A process that has it both open and mapped is 'mapped'.
   */
  how: 'open' | 'mapped';
  /** The process's name (/proc/PID/comm). */
  name: string;
  /** Its command line (/proc/PID/cmdline, arguments joined by spaces; `[name]` when empty). */
  command: string;
  uid: number;
  /** Start time, in clock ticks after boot (/proc/PID/stat): with the pid it names the process, as pids are reused. */
  startTime: number;
  /** The Docker container it runs in (from its cgroup), when it runs in one. */
  containerId?: string;
  /** That container's name, when Docker knows it. */
  container?: string;
}
