/**
 * The overlay protocol: every custom request and notification between the extension
 * (client) and the overlay server. Both sides import this module, so it imports only
 * from vscode-jsonrpc. Paths are overlay paths, absolute from the overlay root ('/a/b').
 *
 * Errors: every failing request answers with a ResponseError whose code is
 * OVERLAY_ERROR and whose data is an OverlayErrorData carrying the Node code
 * ('ENOENT', 'EEXIST', ...). The client maps them once to vscode.FileSystemError.
 *
 * File contents: readFile answers with where the served copy lives (realPath, ino,
 * size, mtime) and the client reads it directly (see client/src/transport.ts, which checks the
 * inode and retries); `inline: true` asks for base64 data instead. Writes carry
 * base64 data.
 *
 * Names that are not valid UTF-8 on disk travel as strings in which each stray byte is
 * a char U+F780–U+F7FF (server/src/overlay/names.ts); paths, listings and realPath use
 * that form. A realPath holding such chars is not a path the client can open: readFile
 * then answers with the data (as if `inline` had been asked).
 */
/* eslint-disable @typescript-eslint/no-namespace -- one namespace per message is the house protocol style (vscode-eslint, rust-analyzer lsp_ext) */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';

// ---------------------------------------------------------------- shared types

/** What the engine accepts to describe a stack (mirrors overlay/types.ts StackSpec). */
export interface StackSpec {
  /** Lower layer directories, TOP-MOST FIRST (like lowerdir=). */
  lower: string[];
  /** Writable upper directory; without it the overlay is read-only. */
  upper?: string;
  /** Work directory on the same filesystem as upper; required with upper. */
  work?: string;
  whiteouts?: 'kernel' | 'oci' | 'auto';
  userxattr?: boolean;
  /** Merged directory of a live kernel mount of this stack, when known. */
  merged?: string;
}

/** `initializationOptions` of the LSP initialize request. */
export interface InitializationOptions {
  overlays: Record<string, StackSpec>;
}

/** ResponseError code of every failed overlay request (LSP RequestFailed). */
export const OVERLAY_ERROR = -32803;

/** `data` of a failed overlay request. */
export interface OverlayErrorData {
  /** Node error code: ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EROFS, EACCES, EPERM, EINVAL, EXDEV, EBUSY, EBADF, ... */
  code: string;
  /** Overlay path (or overlay name, for an unknown overlay). */
  path?: string;
  /** Second path of rename/copy. */
  dest?: string;
  syscall?: string;
}

/** Mirrors vscode.FileType (bit flags). */
export const FileType = { Unknown: 0, File: 1, Directory: 2, SymbolicLink: 64 } as const;
export type FileType = number;

/** Mirrors vscode.FileChangeType. */
export const FileChangeType = { Changed: 1, Created: 2, Deleted: 3 } as const;
export type FileChangeType = 1 | 2 | 3;

/** 'upper' or the index into StackSpec.lower. */
export type LayerRef = 'upper' | number;

/** A vscode.FileStat plus where the entry is served from. */
export interface FileStat {
  type: FileType;
  ctime: number;
  mtime: number;
  size: number;
  /** 1 = vscode.FilePermission.Readonly (read-only overlay). */
  permissions?: 1;
  /** mode & 0o7777 */
  mode: number;
  ino: number;
  layer: LayerRef;
  realPath: string;
}

export interface OverlayInfo {
  name: string;
  /** The validated stack: real absolute paths, decided whiteout format. */
  stack: Required<Pick<StackSpec, 'lower'>> & StackSpec;
  readOnly: boolean;
  /** Set when the upper belongs to a mounted kernel overlay: writes go through `merged`. */
  liveMount?: { merged: string; reachable: boolean };
  /** The watcher has finished its initial scan: changes from now on are reported. */
  watchReady: boolean;
}

export interface NameParams {
  name: string;
}
export interface PathParams {
  name: string;
  path: string;
}

// ---------------------------------------------------------------- overlays

/** Sent from client to server: add (or replace) a named overlay. */
export namespace AddOverlay {
  export const method = 'overlay/addOverlay';
  export interface Params {
    name: string;
    spec: StackSpec;
  }
  export const type = new RequestType<Params, OverlayInfo, void>(method);
}

/** Sent from client to server: close and forget a named overlay (its layers stay on disk). */
export namespace RemoveOverlay {
  export const method = 'overlay/removeOverlay';
  export const type = new RequestType<NameParams, null, void>(method);
}

/** Sent from client to server: the overlays the server has open. */
export namespace ListOverlays {
  export const method = 'overlay/list';
  export const type = new RequestType0<OverlayInfo[], void>(method);
}

// ---------------------------------------------------------------- FileSystemProvider

/** Sent from client to server: stat, following a final symlink (type then has SymbolicLink set). */
export namespace Stat {
  export const method = 'overlay/stat';
  export const type = new RequestType<PathParams, FileStat, void>(method);
}

/** Sent from client to server: the merged listing of a directory. */
export namespace ReadDirectory {
  export const method = 'overlay/readDirectory';
  export const type = new RequestType<PathParams, [string, FileType][], void>(method);
}

/**
 * Sent from client to server: the merged listing of a directory and then, breadth first,
 * of the directories below it (not through symlinks) while the entries listed stay
 * within `budget`. The first listing is always whole; every further one is whole or
 * absent. What the client does with the extra listings: client/src/readAhead.ts.
 */
export namespace ReadDirectories {
  export const method = 'overlay/readDirectories';
  export interface Params extends PathParams {
    budget: number;
  }
  /** One directory: names[i] has types[i] (two flat arrays serialize in half the time of pairs). */
  export interface Listing {
    path: string;
    names: string[];
    types: FileType[];
  }
  export const type = new RequestType<Params, Listing[], void>(method);
}

/** Sent from client to server: which copy serves a file; with `inline` the data itself. */
export namespace ReadFile {
  export const method = 'overlay/readFile';
  export interface Params extends PathParams {
    /** Send the data base64-encoded instead of where it lives. */
    inline?: boolean;
  }
  export interface Result {
    realPath: string;
    ino: number;
    size: number;
    mtimeMs: number;
    layer: LayerRef;
    /** base64, only when `inline` was asked for. */
    data?: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: write a whole file (atomically; copy-up when it came from a lower layer). */
export namespace WriteFile {
  export const method = 'overlay/writeFile';
  export interface Params extends PathParams {
    /** base64 */
    data: string;
    create: boolean;
    overwrite: boolean;
  }
  export const type = new RequestType<Params, null, void>(method);
}

/** Sent from client to server: delete a file, or a directory with `recursive`. */
export namespace Delete {
  export const method = 'overlay/delete';
  export interface Params extends PathParams {
    recursive: boolean;
  }
  export const type = new RequestType<Params, null, void>(method);
}

/** Sent from client to server: rename within one overlay. */
export namespace Rename {
  export const method = 'overlay/rename';
  export interface Params {
    name: string;
    from: string;
    to: string;
    overwrite: boolean;
  }
  export const type = new RequestType<Params, null, void>(method);
}

/** Sent from client to server: create one directory (parent must exist). */
export namespace CreateDirectory {
  export const method = 'overlay/createDirectory';
  export const type = new RequestType<PathParams, null, void>(method);
}

/** Sent from client to server: copy a file or directory within one overlay. */
export namespace Copy {
  export const method = 'overlay/copy';
  export interface Params {
    name: string;
    from: string;
    to: string;
    overwrite: boolean;
  }
  export const type = new RequestType<Params, null, void>(method);
}

// ---------------------------------------------------------------- handles

/** Sent from client to server: open a handle; read handles follow later copy-ups. */
export namespace Open {
  export const method = 'overlay/open';
  export interface Params extends PathParams {
    write?: boolean;
    create?: boolean;
    truncate?: boolean;
    exclusive?: boolean;
  }
  export interface Result {
    handle: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: read from a handle. */
export namespace Read {
  export const method = 'overlay/read';
  export interface Params {
    name: string;
    handle: number;
    position: number;
    length: number;
  }
  /** data: base64; fewer bytes than asked at end of file. */
  export interface Result {
    data: string;
    bytesRead: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: write to a handle opened with `write`. */
export namespace Write {
  export const method = 'overlay/write';
  export interface Params {
    name: string;
    handle: number;
    position: number;
    data: string;
  }
  export interface Result {
    bytesWritten: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: close a handle. */
export namespace Close {
  export const method = 'overlay/close';
  export interface Params {
    name: string;
    handle: number;
  }
  export const type = new RequestType<Params, null, void>(method);
}

// ---------------------------------------------------------------- layers

/** Sent from client to server: which layer serves a path (final symlink not followed) and its real path. */
export namespace Resolve {
  export const method = 'overlay/resolve';
  export interface Result {
    path: string;
    layer: LayerRef;
    realPath: string;
    type: 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's';
  }
  export const type = new RequestType<PathParams, Result, void>(method);
}

/** Sent from client to server: the layers of an overlay, upper first. */
export namespace Layers {
  export const method = 'overlay/layers';
  export interface Layer {
    layer: LayerRef;
    path: string;
    writable: boolean;
  }
  export const type = new RequestType<NameParams, Layer[], void>(method);
}

/** Sent from client to server: changes of upper against the lower layers, as `docker diff`. */
export namespace Diff {
  export const method = 'overlay/diff';
  export interface Change {
    kind: 'A' | 'C' | 'D';
    path: string;
    /** Type of the entry now (A and C), as `find -printf %y`. */
    type?: 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's';
    /** The lower layer whose copy the change hides or replaces (C and D), when there is one. */
    lowerLayer?: number;
  }
  export const type = new RequestType<NameParams, Change[], void>(method);
}

/** Sent from client to server: the lower copy of a path (the upper layer left out), or null when the lowers have none. */
export namespace ResolveLower {
  export const method = 'overlay/resolveLower';
  export const type = new RequestType<PathParams, Resolve.Result | null, void>(method);
}

/**
 * Sent from client to server: a stack spec from what Docker gives — an overlay2 layer
 * directory, or the JSON `docker inspect` printed — parsed by the engine's stack parsers.
 */
export namespace ParseStack {
  export const method = 'overlay/parseStack';
  export interface Params {
    dockerLayerDir?: string;
    dockerInspect?: string;
  }
  export const type = new RequestType<Params, StackSpec, void>(method);
}

/** Sent from client to server: write the upper layer as an OCI layer tarball (.tar or .tar.gz) at `file` on the server's machine. */
export namespace ExportLayer {
  export const method = 'overlay/exportLayer';
  export interface Params {
    name: string;
    file: string;
    gzip?: boolean;
  }
  export interface Result {
    file: string;
    entries: number;
    diffId: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: revert a path to the lower layers' version (drop the upper copy, added tree or whiteout). */
export namespace Revert {
  export const method = 'overlay/revert';
  export const type = new RequestType<PathParams, null, void>(method);
}

// ---------------------------------------------------------------- search

/** Sent from client to server: files of the merged tree matching a glob. */
export namespace FindFiles {
  export const method = 'overlay/findFiles';
  export interface Params {
    name: string;
    /** Glob over the path relative to the root ('**' / '*' / '?' / '{a,b}' / '[ab]'); default all files. */
    include?: string;
    exclude?: string;
    maxResults?: number;
  }
  export interface Result {
    paths: string[];
    limitHit: boolean;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent from client to server: text search in the merged tree (binary files and files over 4 MiB are skipped). */
export namespace SearchText {
  export const method = 'overlay/searchText';
  export interface Params {
    name: string;
    query: string;
    isRegExp?: boolean;
    isCaseSensitive?: boolean;
    isWordMatch?: boolean;
    include?: string;
    exclude?: string;
    maxResults?: number;
  }
  /** line and character are 0-based; preview is the whole line (truncated to 1000 chars). */
  export interface Match {
    path: string;
    line: number;
    character: number;
    length: number;
    preview: string;
  }
  export interface Result {
    matches: Match[];
    limitHit: boolean;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

// ---------------------------------------------------------------- notifications

/** Sent from server to client: batched changes of the merged view (any writer). */
export namespace DidChangeFile {
  export const method = 'overlay/didChangeFile';
  export interface Change {
    name: string;
    path: string;
    type: FileChangeType;
    /** For Changed and Created: the new stat (mtime and size decide whether an editor reloads). */
    stat?: FileStat;
  }
  export interface Params {
    changes: Change[];
  }
  export const type = new NotificationType<Params>(method);
}

/** Sent from server to client: a file moved from a lower layer to the upper one; `lowerPath` is now stale. */
export namespace DidCopyUp {
  export const method = 'overlay/didCopyUp';
  export interface Params {
    name: string;
    path: string;
    lowerPath: string;
    upperPath: string;
    /** 'server': this server's engine did it; 'outside': seen by the watcher (CLI, container, kernel mount). */
    by: 'server' | 'outside';
  }
  export const type = new NotificationType<Params>(method);
}
