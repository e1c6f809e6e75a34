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
/* eslint-disable @typescript-eslint/no-namespace -- each message is a value (what it is: messages.ts) and a namespace of its types, the house protocol style (vscode-eslint, rust-analyzer lsp_ext) */
import { notification, request, request0, returns } from './messages';
import type { ChangeKind, EntryType, Holder, LayerRef, StackSpec } from './types';
import { array, base64, bool, count, object, oneOf, optional, str, type Check } from './validate';

// ---------------------------------------------------------------- shared types

export type { ChangeKind, EntryType, Holder, LayerRef, StackSpec, WhiteoutFormat } from './types';

/** `initializationOptions` of the LSP initialize request. */
export interface InitializationOptions {
  overlays: Record<string, StackSpec>;
  /** The setting overlay.watchLowerLayers (default 'auto'). */
  watchLowerLayers?: WatchLowerLayers;
  /** Look for the processes that still read the lower copy at each copy-up (default true; see Configure). */
  scanHolders?: boolean;
}

/**
 * The setting overlay.watchLowerLayers: which lower layers the server watches for outside
 * changes. 'auto': none of a container's or an image's layers, nor the lowers of a mounted
 * overlay (they cannot change); in the others only the directories VS Code watches or the
 * user looks at. 'always': every lower layer, whole. 'never': no lower layer.
 */
export type WatchLowerLayers = 'auto' | 'always' | 'never';
export const watchLowerLayersValues: readonly WatchLowerLayers[] = ['auto', 'always', 'never'];

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

/** The image an overlay's lower layers are (Open Image…, overlayws --image), or a container's base image. */
export interface ImageInfo {
  /** As given: a Docker image name or id, a `docker save` archive, an OCI image layout directory. */
  ref: string;
  /** Where it was read: the Docker daemon, a docker/podman save archive, an OCI image layout. */
  source: 'docker' | 'docker-archive' | 'oci-layout';
  /** The image id: the digest of its config. */
  id: string;
  /** Per lower layer (indexed as stack.lower, top-most first): the history entry that made it (created_by), when known. */
  layers: (string | undefined)[];
  /** The container whose stack this is (its upper is the container's), when opened from docker inspect. */
  container?: string;
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
  /** The mount this server holds for the overlay (overlay/mount), whose directory is the workspace folder. */
  mount?: MountState;
  /** The image its lower layers are, for image overlays. */
  image?: ImageInfo;
}

/** A mount the server made (or adopted) for an overlay. */
export interface MountState {
  /** The mount point: a `file:` folder under the server's runtime directory. */
  path: string;
  by: 'kernel' | 'fuse-overlayfs';
  /** Why this way, in one sentence (status item, log). */
  reason: string;
  /** It was mounted already (another window, or the server before a restart) and is shared. */
  adopted: boolean;
}

export interface NameParams {
  name: string;
}
export interface PathParams {
  name: string;
  path: string;
}

// ---------------------------------------------------------------- checks of the shared types

/** A path string; '' counts as absent (a setting left empty). */
const optPath: Check<string | undefined> = (v, at) => (v === '' ? undefined : optional(str)(v, at));

export const stackSpec: Check<StackSpec> = object<StackSpec>({
  lower: array(str),
  upper: optPath,
  work: optPath,
  whiteouts: optional(oneOf('kernel', 'oci', 'auto')),
  userxattr: optional(bool),
  merged: optPath,
});
const nameParams = object<NameParams>({ name: str });
const pathParams = object<PathParams>({ name: str, path: str });

// ---------------------------------------------------------------- overlays

export const AddOverlay = request('overlay/addOverlay', {
  doc: 'Add (or replace) a named overlay; answers with the validated stack.',
  changesOverlay: true,
  params: object<AddOverlay.Params>({ name: str, spec: stackSpec }),
  result: returns<OverlayInfo>(),
});
export namespace AddOverlay {
  export interface Params {
    name: string;
    spec: StackSpec;
  }
}

export const RemoveOverlay = request('overlay/removeOverlay', {
  doc: 'Close and forget a named overlay (its layers stay on disk).',
  changesOverlay: true,
  params: nameParams,
  result: returns<null>(),
});

export const ListOverlays = request0('overlay/list', {
  doc: 'The overlays the server has open.',
  changesOverlay: false,
  result: returns<OverlayInfo[]>(),
});

// ---------------------------------------------------------------- mounts

export const Mount = request('overlay/mount', {
  doc: 'Mount an open overlay (the kernel where the server may, else fuse-overlayfs), or adopt the mount of the same stack; a stack that cannot be mounted answers why.',
  changesOverlay: false,
  params: nameParams,
  result: returns<Mount.Result>(),
});
export namespace Mount {
  /** One of the two. `existing`: a mount not made by the server (a running container) already serves the upper: open it there. */
  export interface Result {
    mount?: MountState;
    existing?: string;
    failure?: string;
  }
}

export const Unmount = request('overlay/unmount', {
  doc: "Let go of an overlay's mount; unmounted when no other window holds it.",
  changesOverlay: false,
  params: nameParams,
  result: returns<null>(),
});

export const Mounts = request0('overlay/mounts', {
  doc: "The server's runtime directory (where it mounts) and the kernel overlay mounts of /proc/self/mountinfo, parsed by the engine.",
  changesOverlay: false,
  result: returns<Mounts.Result>(),
});
export namespace Mounts {
  export interface Result {
    runtimeDir: string;
    overlays: { merged: string; spec: StackSpec }[];
  }
}

// ---------------------------------------------------------------- FileSystemProvider

export const Stat = request('overlay/stat', {
  doc: 'stat, following a final symlink (the type then has SymbolicLink set).',
  changesOverlay: false,
  params: pathParams,
  result: returns<FileStat>(),
});

export const ReadDirectory = request('overlay/readDirectory', {
  doc: 'The merged listing of a directory.',
  changesOverlay: false,
  params: pathParams,
  result: returns<[string, FileType][]>(),
});

/**
 * The first listing is always whole; every further one is whole or absent. What the
 * client does with the extra listings: client/src/readAhead.ts.
 */
export const ReadDirectories = request('overlay/readDirectories', {
  doc: 'The merged listing of a directory, then breadth first those below it (not through symlinks) while the entries stay within `budget`.',
  changesOverlay: false,
  params: object<ReadDirectories.Params>({ name: str, path: str, budget: count }),
  result: returns<ReadDirectories.Listing[]>(),
});
export namespace ReadDirectories {
  export interface Params extends PathParams {
    budget: number;
  }
  /** One directory: names[i] has types[i] (two flat arrays serialize in half the time of pairs). */
  export interface Listing {
    path: string;
    names: string[];
    types: FileType[];
  }
}

export const ReadFile = request('overlay/readFile', {
  doc: 'Which copy serves a file (real path, inode, size, mtime); with `inline` the data itself, base64.',
  changesOverlay: false,
  params: object<ReadFile.Params>({ name: str, path: str, inline: optional(bool) }),
  result: returns<ReadFile.Result>(),
});
export namespace ReadFile {
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
}

export const WriteFile = request('overlay/writeFile', {
  doc: 'Write a whole file, atomically; a copy-up when it came from a lower layer.',
  changesOverlay: true,
  params: object<WriteFile.Params>({ name: str, path: str, data: base64, create: bool, overwrite: bool }),
  result: returns<null>(),
});
export namespace WriteFile {
  export interface Params extends PathParams {
    /** base64 */
    data: string;
    create: boolean;
    overwrite: boolean;
  }
}

export const Delete = request('overlay/delete', {
  doc: 'Delete a file, or a directory with `recursive`.',
  changesOverlay: true,
  params: object<Delete.Params>({ name: str, path: str, recursive: bool }),
  result: returns<null>(),
});
export namespace Delete {
  export interface Params extends PathParams {
    recursive: boolean;
  }
}

export interface MoveParams {
  name: string;
  from: string;
  to: string;
  overwrite: boolean;
}
const moveParams = object<MoveParams>({ name: str, from: str, to: str, overwrite: bool });

export const Rename = request('overlay/rename', {
  doc: 'Rename within one overlay.',
  changesOverlay: true,
  params: moveParams,
  result: returns<null>(),
});

export const CreateDirectory = request('overlay/createDirectory', {
  doc: 'Create one directory (its parent must exist).',
  changesOverlay: true,
  params: pathParams,
  result: returns<null>(),
});

export const Copy = request('overlay/copy', {
  doc: 'Copy a file or directory within one overlay.',
  changesOverlay: true,
  params: moveParams,
  result: returns<null>(),
});

// ---------------------------------------------------------------- handles

export const Open = request('overlay/open', {
  doc: 'Open a handle; read handles follow later copy-ups.',
  changesOverlay: true,
  params: object<Open.Params>({
    name: str,
    path: str,
    write: optional(bool),
    create: optional(bool),
    truncate: optional(bool),
    exclusive: optional(bool),
  }),
  result: returns<Open.Result>(),
});
export namespace Open {
  export interface Params extends PathParams {
    write?: boolean;
    create?: boolean;
    truncate?: boolean;
    exclusive?: boolean;
  }
  export interface Result {
    handle: number;
  }
}

export const Read = request('overlay/read', {
  doc: 'Read from a handle (base64; fewer bytes than asked at end of file).',
  changesOverlay: false,
  params: object<Read.Params>({ name: str, handle: count, position: count, length: count }),
  result: returns<Read.Result>(),
});
export namespace Read {
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
}

export const Write = request('overlay/write', {
  doc: 'Write to a handle opened with `write`.',
  changesOverlay: true,
  params: object<Write.Params>({ name: str, handle: count, position: count, data: base64 }),
  result: returns<Write.Result>(),
});
export namespace Write {
  export interface Params {
    name: string;
    handle: number;
    position: number;
    data: string;
  }
  export interface Result {
    bytesWritten: number;
  }
}

export const Close = request('overlay/close', {
  doc: 'Close a handle.',
  changesOverlay: true,
  params: object<Close.Params>({ name: str, handle: count }),
  result: returns<null>(),
});
export namespace Close {
  export interface Params {
    name: string;
    handle: number;
  }
}

// ---------------------------------------------------------------- layers

export const Resolve = request('overlay/resolve', {
  doc: 'Which layer serves a path (a final symlink not followed) and its real path.',
  changesOverlay: false,
  params: pathParams,
  result: returns<Resolve.Result>(),
});
export namespace Resolve {
  export interface Result {
    path: string;
    layer: LayerRef;
    realPath: string;
    type: EntryType;
  }
}

export const Layers = request('overlay/layers', {
  doc: 'The layers of an overlay, upper first.',
  changesOverlay: false,
  params: nameParams,
  result: returns<Layers.Layer[]>(),
});
export namespace Layers {
  export interface Layer {
    layer: LayerRef;
    path: string;
    writable: boolean;
  }
}

export const Diff = request('overlay/diff', {
  doc: 'Changes of the upper layer against the lower layers, as `docker diff` prints them (its naive form: every ancestor of a change is C, each lower entry an opaque directory hides is D).',
  changesOverlay: false,
  params: nameParams,
  result: returns<Diff.Change[]>(),
});
export namespace Diff {
  export interface Change {
    kind: ChangeKind;
    path: string;
    /** Type of the entry now (A and C), as `find -printf %y`. */
    type?: EntryType;
    /** The lower layer whose copy the change hides or replaces (C and D), when there is one. */
    lowerLayer?: number;
    /** For a D: the opaque directory that hides this lower entry (it has no whiteout of its own). */
    hiddenBy?: string;
  }
}

export const History = request('overlay/history', {
  doc: 'What each layer, read on its own, has at a path, upper first: content (file with size and sha256, dir, symlink with target), a whiteout, or an opaque directory that hides it.',
  changesOverlay: false,
  params: pathParams,
  result: returns<History.Entry[]>(),
});
export namespace History {
  export interface Entry {
    layer: LayerRef;
    kind: 'file' | 'dir' | 'symlink' | 'whiteout' | 'opaque';
    size?: number;
    /** hex */
    sha256?: string;
    target?: string;
  }
}

export const ResolveLower = request('overlay/resolveLower', {
  doc: 'The lower copy of a path (the upper layer left out), or null when the lowers have none.',
  changesOverlay: false,
  params: pathParams,
  result: returns<Resolve.Result | null>(),
});

export const ParseStack = request('overlay/parseStack', {
  doc: 'A stack spec from what Docker gives — an overlay2 layer directory, or `docker inspect` JSON — parsed by the engine.',
  changesOverlay: false,
  params: object<ParseStack.Params>({ dockerLayerDir: optional(str), dockerInspect: optional(str) }),
  result: returns<StackSpec>(),
});
export namespace ParseStack {
  export interface Params {
    dockerLayerDir?: string;
    dockerInspect?: string;
  }
}

export const OpenImage = request('overlay/openImage', {
  doc: "Open an image as a named overlay: a local Docker image name or id (its layer directories, read-only), a docker/podman save archive or an OCI image layout directory (layers unpacked once into the layer cache, verified). With `scratch` an empty upper and work directory are made in the user's cache; with `upper`/`work` those; else read-only.",
  changesOverlay: true,
  params: object<OpenImage.Params>({ name: str, ref: str, upper: optPath, work: optPath, scratch: optional(bool) }),
  result: returns<OverlayInfo>(),
});
export namespace OpenImage {
  export interface Params {
    name: string;
    ref: string;
    upper?: string;
    work?: string;
    scratch?: boolean;
  }
}

export const CommitImage = request('overlay/commitImage', {
  doc: "Commit the upper layer as a new image on top of the overlay's image (or a container's base image): an OCI image layout directory, a docker load archive, and/or docker load; paths absolute on the server's machine.",
  changesOverlay: false,
  params: object<CommitImage.Params>({
    name: str,
    tag: optional(str),
    dockerArchive: optPath,
    ociLayout: optPath,
    load: optional(bool),
    message: optional(str),
  }),
  result: returns<CommitImage.Result>(),
});
export namespace CommitImage {
  export interface Params {
    name: string;
    tag?: string;
    dockerArchive?: string;
    ociLayout?: string;
    load?: boolean;
    message?: string;
  }
  export interface Result {
    /** The new image's id (its config's digest). */
    id: string;
    /** The new layer's diff ID. */
    diffId: string;
    /** What docker load printed. */
    loaded?: string;
  }
}

export const ExportLayer = request('overlay/exportLayer', {
  doc: "Write the upper layer as an OCI layer tarball (.tar or .tar.gz) at `file`, an absolute path on the server's machine.",
  changesOverlay: false,
  params: object<ExportLayer.Params>({ name: str, file: str, gzip: optional(bool) }),
  result: returns<ExportLayer.Result>(),
});
export namespace ExportLayer {
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
}

export const Revert = request('overlay/revert', {
  doc: "Revert a path to the lower layers' version (drop the upper copy, added tree or whiteout); an entry an opaque directory hides comes back as a copy of its lower version; under a mount the server holds, it unmounts for the moment. `throughMount`: under another's mount, write the lower copy back through it instead.",
  changesOverlay: true,
  params: object<Revert.Params>({ name: str, path: str, throughMount: optional(bool) }),
  result: returns<null>(),
});
export namespace Revert {
  export interface Params extends PathParams {
    /**
     * The upper belongs to a mount the server does not own (a running container's): what can be
     * done without changing the upper behind it — the lower copy written back through the mount
     * (a deleted entry comes back; a modified file reads as the lower copy again, and stays in
     * the upper as a changed copy).
     */
    throughMount?: boolean;
  }
}

// ---------------------------------------------------------------- search

export const FindFiles = request('overlay/findFiles', {
  doc: 'Files of the merged tree matching a glob.',
  changesOverlay: false,
  params: object<FindFiles.Params>({ name: str, include: optional(str), exclude: optional(str), maxResults: optional(count) }),
  result: returns<FindFiles.Result>(),
});
export namespace FindFiles {
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
}

export const SearchText = request('overlay/searchText', {
  doc: 'Text search in the merged tree (binary files and files over 4 MiB are skipped).',
  changesOverlay: false,
  params: object<SearchText.Params>({
    name: str,
    query: str,
    isRegExp: optional(bool),
    isCaseSensitive: optional(bool),
    isWordMatch: optional(bool),
    include: optional(str),
    exclude: optional(str),
    maxResults: optional(count),
  }),
  result: returns<SearchText.Result>(),
});
export namespace SearchText {
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
}

// ---------------------------------------------------------------- watching

/**
 * What VS Code asks its FileSystemProvider to watch (`watch(uri, { recursive, excludes })`),
 * forwarded, and the directories the extension follows for the user (those VS Code listed
 * lately: non-recursive watches of its own). What the server then
 * watches in each layer is its policy (overlay.watchLowerLayers; `overlay/watching` tells).
 */
export const Watch = request('overlay/watch', {
  doc: "Report changes under `path` (a directory, or a file's directory) until `overlay/unwatch` with the same `id`; `recursive` covers the tree below as far as the server's watch policy does (overlay.watchLowerLayers).",
  changesOverlay: false,
  params: object<Watch.Params>({ name: str, id: count, path: str, recursive: bool, excludes: optional(array(str)) }),
  result: returns<null>(),
});
export namespace Watch {
  export interface Params extends PathParams {
    /** Chosen by the client, unique among its watches of this overlay. */
    id: number;
    recursive: boolean;
    /** Globs relative to `path` whose changes need not be reported (VS Code's files.watcherExclude). */
    excludes?: string[];
  }
}

export const Unwatch = request('overlay/unwatch', {
  doc: 'End the `overlay/watch` of that `id` (an unknown id is no error: the watch may have gone with a restart).',
  changesOverlay: false,
  params: object<Unwatch.Params>({ name: str, id: count }),
  result: returns<null>(),
});
export namespace Unwatch {
  export interface Params {
    name: string;
    id: number;
  }
}

export const Watching = request('overlay/watching', {
  doc: 'How each layer of an overlay is watched now: whole, only the directories followed, or not at all, and why.',
  changesOverlay: false,
  params: nameParams,
  result: returns<Watching.Layer[]>(),
});
export namespace Watching {
  /** 'whole': every directory (recursive watches of `roots`); 'followed': the directories in `dirs` only; 'none': not watched. */
  export type Mode = 'whole' | 'followed' | 'none';
  export interface Layer {
    layer: LayerRef;
    root: string;
    mode: Mode;
    /** Why, in a few words ("an image layer", "the upper is small", ...). */
    reason: string;
    /** Real directories watched recursively ('whole'). */
    roots: string[];
    /** Real directories watched on their own, without what is below them ('followed'; 'whole' ones that were too big to take recursively). */
    dirs: string[];
  }
}

// ---------------------------------------------------------------- server options

export const Configure = request('overlay/configure', {
  doc: 'Server options that follow VS Code settings: `watchLowerLayers` (overlay.watchLowerLayers); `scanHolders` (overlay.staleReaders is not "off") looks for the processes that still read the lower copy at each copy-up. Options left out stay as they are.',
  changesOverlay: false,
  params: object<Configure.Params>({ watchLowerLayers: optional(oneOf(...watchLowerLayersValues)), scanHolders: optional(bool) }),
  result: returns<null>(),
});
export namespace Configure {
  export interface Params {
    watchLowerLayers?: WatchLowerLayers;
    scanHolders?: boolean;
  }
}

// ---------------------------------------------------------------- notifications

export const DidChangeFile = notification('overlay/didChangeFile', {
  doc: 'Batched changes of the merged view, by any writer.',
  params: returns<DidChangeFile.Params>(),
});
export namespace DidChangeFile {
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
}

export const DidChangeMount = notification('overlay/didChangeMount', {
  doc: "An overlay's mount went away under the server (someone unmounted it), or came back.",
  params: returns<DidChangeMount.Params>(),
});
export namespace DidChangeMount {
  export interface Params {
    name: string;
    /** The mount now; absent when it is gone. */
    mount?: MountState;
    message: string;
  }
}

/**
 * Sent once the processes that still read the stale copy are known (`holders`): the
 * request that made the copy-up has answered already. Copy-ups are notified in the order
 * they happened.
 */
export const DidCopyUp = notification('overlay/didCopyUp', {
  doc: 'A file moved from a lower layer to the upper one; `lowerPath` is now stale, and `holders` still read it.',
  params: returns<DidCopyUp.Params>(),
});
export namespace DidCopyUp {
  export interface Params {
    name: string;
    path: string;
    lowerPath: string;
    upperPath: string;
    /** 'server': this server's engine did it; 'outside': seen by the watcher (CLI, container, kernel mount). */
    by: 'server' | 'outside';
    /**
     * The processes that still hold the stale copy open or mapped: the lower file, or the file
     * as a kernel overlay mount showing it presents it (a container's; the stack's own live
     * mount: the merged file as it was before the copy-up), by pid. All of them, this
     * VS Code's own processes too. Absent when the server does not look (Configure).
     */
    holders?: Holder[];
    /** Processes the server may not inspect (another user's, for a server that is not root): they might hold it too. */
    uninspectable?: number;
  }
}
