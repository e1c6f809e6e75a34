/**
 * Live watching of one overlay: chokidar on the upper and every lower layer, raw
 * layer events mapped to what the MERGED view shows.
 *
 * Each raw event names a layer and a path; at flush time (batched, ~25 ms) the path
 * is looked up again through the engine and compared with the last known merged
 * state of that path:
 *   - a change in a layer that a higher layer hides is no event;
 *   - a whiteout appearing is Deleted;
 *   - an upper copy of a lower file appearing is Changed, and a copy-up (by the
 *     server when the engine just did it or a live-mount write was routed by us,
 *     otherwise by an outside writer);
 *   - removing an upper copy that uncovers a lower file is Changed.
 * Without a known previous state (the cache is filled by the watcher itself and,
 * only when empty, by server reads) the previous state of an upper event is what
 * the lower layers alone show.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { LayerView } from './overlay/lookup';
import { encodePath, hasEscapes } from './overlay/index';
import { readdirEntries } from './overlay/names';
import { planWatches } from './watchPlan';
import { higherLayer, layerDepth, type LayerRef, type Overlay, type RawEventKind as RawKind } from './overlay/index';
import { FileChangeType, type DidChangeFile, type FileStat } from '../../shared/src/protocol';

/** The merged state of one path, as far as change detection needs it. */
export interface MergedState {
  type: string;
  layer: LayerRef;
  realPath: string;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

interface Pending {
  /** The highest layer a raw event came from. */
  layer: LayerRef;
  kind: RawKind;
}

export interface WatcherEvents {
  changes: [Omit<DidChangeFile.Change, 'name'>[]];
  copyup: [{ path: string; lowerPath: string; upperPath: string; by: 'server' | 'outside' }];
  error: [Error];
}

function exists(real: string): boolean {
  try {
    return fs.lstatSync(encodePath(real), { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

const CACHE_MAX = 200_000;
const DEDUPE_MS = 10_000;

export class OverlayWatcher extends EventEmitter<WatcherEvents> {
  private readonly roots: { root: string; layer: LayerRef }[];
  private readonly lowerView?: LayerView;
  private readonly cache = new Map<string, MergedState | null>();
  private pending = new Map<string, Pending>();
  private timer?: NodeJS.Timeout;
  private readonly watchers: FSWatcher[] = [];
  private readonly serverCopyUps = new Map<string, number>();
  private readonly serverWrites = new Map<string, number>();
  private closed = false;
  ready = false;

  constructor(
    private readonly overlay: Overlay,
    private readonly statOf: (p: string) => FileStat | undefined,
    private readonly batchMs = 25,
    /** Entries chokidar is given to scan at once (see watchPlan.ts). */
    private readonly scanEntries = 20_000,
  ) {
    super();
    const stack = overlay.stack;
    const roots: { root: string; layer: LayerRef }[] = stack.lower.map((root, i) => ({ root, layer: i }));
    if (stack.upper) {
      roots.unshift({ root: stack.upper, layer: 'upper' });
      this.lowerView = new LayerView({ ...stack, upper: undefined, work: undefined });
    }
    // Longest root first, so a layer nested in another maps to itself.
    this.roots = roots.sort((a, b) => b.root.length - a.root.length);
  }

  /**
   * Start watching; resolves when the initial scan is done. chokidar watches
   * DIRECTORIES only: its default of one fs.watch per file cost ~9 KiB each (950 MiB
   * of RSS and 20 s of start-up for 100,000 files). Entries inside a directory are
   * reported by the directory's own inotify watch, which chokidar passes on as
   * 'raw' events (name + watched directory); each is looked up again anyway.
   * Layers are watched one after another, each in pieces (see watchPlan.ts): chokidar
   * scans everything it is given at once, and the garbage of one big scan stays as RSS.
   */
  async start(): Promise<void> {
    const skip = (p: string): boolean => this.ignored(p);
    for (const r of [...this.roots].sort((a, b) => layerDepth(a.layer) - layerDepth(b.layer))) {
      if (this.closed) return;
      const plan = await planWatches(r.root, skip, this.scanEntries);
      if (plan.alone.length > 0) await this.watchPaths(plan.alone, 0);
      for (const group of plan.groups) {
        if (this.closed) return;
        await this.watchPaths(group, undefined);
      }
    }
    this.ready = true;
  }

  /** A chokidar instance for `paths` (recursive, or depth 0 for directories watched alone); resolves when its scan is done. */
  private watchPaths(paths: string[], depth: 0 | undefined): Promise<void> {
    const w = watch(paths, {
      ignoreInitial: true,
      usePolling: false,
      followSymlinks: false,
      ignorePermissionErrors: true,
      atomic: false,
      depth,
      ignored: (p: string, stats?: fs.Stats) => (stats !== undefined && !stats.isDirectory()) || this.ignored(p),
    });
    this.watchers.push(w);
    w.on('all', (event, p) => {
      this.raw(event, p);
      if (event === 'addDir') {
        // A directory made inside one watched alone: chokidar stops at depth 0, a
        // recursive instance takes it (and what it holds) from here.
        if (depth === 0 && !paths.includes(p)) this.lateWatcher().add(p);
        // Entries made in a new directory before chokidar's watch on it existed have no
        // event of their own (a copy-up makes the parent, then links the file into it):
        // look now, and again once the new watch is surely in place.
        this.scanNew(p);
        for (const ms of [60, 300]) setTimeout(() => this.scanNew(p), ms).unref();
      }
    });
    w.on('raw', (event: string, name: string, opts: unknown) => {
      const details = opts as { watchedPath?: string } | undefined;
      const dir = details?.watchedPath;
      if (!name || !dir || typeof name !== 'string') return;
      const real = dir + '/' + name;
      if (this.ignored(real)) return;
      if (event === 'change') this.raw('change', real);
      else this.raw(exists(real) ? 'add' : 'unlink', real);
    });
    w.on('error', (err) => this.emit('error', err instanceof Error ? err : new Error(String(err))));
    return new Promise((resolve) => w.once('ready', () => resolve()));
  }

  /** The work directory and a live mount's merged directory are never watched (they are not layers). */
  private ignored(p: string): boolean {
    const { work, merged } = this.overlay.stack;
    return [work, merged].some((d) => !!d && (p === d || p.startsWith(d + '/')));
  }

  private late?: FSWatcher;
  private lateWatcher(): FSWatcher {
    if (!this.late) {
      const paths: string[] = [];
      void this.watchPaths(paths, undefined);
      this.late = this.watchers[this.watchers.length - 1];
    }
    return this.late;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.watchers.map((w) => w.close()));
  }

  private readonly escapedNames = new Map<string, Set<string>>();

  /**
   * chokidar names entries with strings, so a name that is not UTF-8 arrives with
   * U+FFFD instead of its bytes. Read the directory by bytes and report each such
   * name there (escaped, as the engine names it): the ones seen, and the ones gone
   * since the last look.
   */
  private lossyNames(dir: string): void {
    let now: string[];
    try {
      now = readdirEntries(dir)
        .map((d) => d.name)
        .filter((n) => hasEscapes(n) || n.includes('\uFFFD'));
    } catch {
      now = [];
    }
    const before = this.escapedNames.get(dir) ?? new Set<string>();
    for (const n of now) this.raw(before.has(n) ? 'change' : 'add', dir + '/' + n);
    for (const n of before) if (!now.includes(n)) this.raw('unlink', dir + '/' + n);
    if (now.length > 0) this.escapedNames.set(dir, new Set(now));
    else this.escapedNames.delete(dir);
  }

  /** Report what a new directory holds (a bounded walk) as raw adds; known states make no events. */
  private scanNew(dir: string, budget = { left: 2000 }): void {
    if (this.closed) return;
    let entries: fs.Dirent[];
    try {
      entries = readdirEntries(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      if (--budget.left < 0) return;
      const p = dir + '/' + e.name;
      this.raw('add', p);
      if (e.isDirectory()) this.scanNew(p, budget);
    }
  }

  /** The engine just copied `p` up: the server notified already, the watcher must not again. */
  noteServerCopyUp(p: string): void {
    this.serverCopyUps.set(p, Date.now());
  }

  /** A write of ours routed through a live mount: a copy-up the watcher sees there is by the server. */
  noteServerWrite(p: string): void {
    this.serverWrites.set(p, Date.now());
  }

  /** Before the server changes `p`: remember what the merged view shows now, if nothing is known yet. */
  noteBeforeWrite(p: string): void {
    if (this.cache.has(p) || this.pending.has(p)) return;
    this.remember(p, this.stateOf(this.overlay.view, p));
  }

  /** A state the server just served: remembered only if nothing is known yet. */
  noteServed(p: string, st: FileStat): void {
    if (this.cache.has(p) || this.pending.has(p)) return;
    this.remember(p, {
      type: st.type & 2 ? 'd' : 'f',
      layer: st.layer,
      realPath: st.realPath,
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtime,
      ctimeMs: st.ctime,
    });
  }

  /** Process everything pending now (tests, shutdown). */
  flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
  }

  // ---------------------------------------------------------------- internals

  private remember(p: string, s: MergedState | null): void {
    this.cache.delete(p);
    this.cache.set(p, s);
    if (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
  }

  private raw(event: string, real: string): void {
    if (this.closed) return;
    if (real.includes('\uFFFD') && !exists(real)) {
      this.lossyNames(path.dirname(real));
      return;
    }
    const hit = this.roots.find((r) => real === r.root || real.startsWith(r.root + '/'));
    if (!hit) return;
    if (hit.layer !== 'upper') {
      // A lower layer changed on disk (rare: they belong to images): forget what the
      // lookups cached from the lowers, before anyone is served from it again.
      this.overlay.invalidateLowers();
      this.lowerView?.invalidateLowers();
    }
    const raw = this.overlay.view.format.classifyEvent(
      real.slice(hit.root.length) || '/',
      event === 'add' || event === 'addDir' ? 'add' : event === 'change' ? 'change' : 'unlink',
      real,
      hit.layer === 'upper',
    );
    const rel = raw.path;
    const kind = raw.kind;
    const prev = this.pending.get(rel);
    // An add wins over change; a whiteout over everything; the highest layer is kept.
    const rank: Record<RawKind, number> = { change: 0, unlink: 1, add: 2, opaque: 3, whiteout: 4 };
    if (!prev) this.pending.set(rel, { layer: hit.layer, kind });
    else this.pending.set(rel, { layer: higherLayer(prev.layer, hit.layer), kind: rank[kind] > rank[prev.kind] ? kind : prev.kind });
    if (!this.timer)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.batchMs);
  }

  private stateOf(view: { resolve: LayerView['resolve'] }, p: string): MergedState | null {
    try {
      const e = view.resolve(p === '/' ? [] : p.slice(1).split('/'), false, 'watch', p);
      if (!e.top) return null;
      const st = e.top.st;
      const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
      return { type, layer: e.top.layer.ref, realPath: e.top.real, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    } catch {
      return null;
    }
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    const out: Omit<DidChangeFile.Change, 'name'>[] = [];
    const now = Date.now();
    for (const [k, t] of this.serverCopyUps) if (now - t > DEDUPE_MS) this.serverCopyUps.delete(k);
    for (const [k, t] of this.serverWrites) if (now - t > DEDUPE_MS) this.serverWrites.delete(k);
    for (const [p, ev] of batch) {
      try {
        this.classify(p, ev, out);
      } catch (err) {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (out.length > 0) this.emit('changes', out);
  }

  private classify(p: string, ev: Pending, out: Omit<DidChangeFile.Change, 'name'>[]): void {
    const now = this.stateOf(this.overlay.view, p);
    let type: FileChangeType | 'replaced' | undefined;
    let copiedFrom: MergedState | undefined;
    if (this.cache.has(p)) {
      const prev = this.cache.get(p) as MergedState | null;
      if (!prev && now) type = FileChangeType.Created;
      else if (prev && !now) type = FileChangeType.Deleted;
      else if (prev && now) {
        if ((prev.type === 'd') !== (now.type === 'd')) type = 'replaced';
        else if (
          prev.layer !== now.layer ||
          prev.ino !== now.ino ||
          prev.size !== now.size ||
          prev.mtimeMs !== now.mtimeMs ||
          prev.ctimeMs !== now.ctimeMs ||
          ev.kind === 'opaque'
        )
          type = FileChangeType.Changed;
        if (prev.layer !== 'upper' && now.layer === 'upper' && prev.type === 'f' && now.type === 'f') copiedFrom = prev;
      }
    } else if (now) {
      if (layerDepth(now.layer) < layerDepth(ev.layer))
        type = undefined; // hidden by a higher layer
      else if (layerDepth(now.layer) > layerDepth(ev.layer))
        type = FileChangeType.Changed; // uncovered a lower copy
      else if (ev.kind === 'add') {
        const below = ev.layer === 'upper' && this.lowerView ? this.stateOf(this.lowerView, p) : null;
        if (!below) type = FileChangeType.Created;
        else if ((below.type === 'd') !== (now.type === 'd')) type = 'replaced';
        else {
          type = FileChangeType.Changed;
          if (below.type === 'f' && now.type === 'f') copiedFrom = below;
        }
      } else type = FileChangeType.Changed;
    } else if (ev.kind === 'unlink' || ev.kind === 'whiteout') {
      type = FileChangeType.Deleted;
    }
    this.remember(p, now);
    if (type === undefined) return;
    if (type === FileChangeType.Deleted) {
      const prefix = p === '/' ? '/' : p + '/';
      for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k);
      out.push({ path: p, type });
      return;
    }
    if (type === 'replaced') {
      out.push({ path: p, type: FileChangeType.Deleted });
      type = FileChangeType.Created;
    }
    out.push({ path: p, type, stat: this.statOf(p) });
    if (copiedFrom && now) {
      if (this.serverCopyUps.delete(p)) return; // the server already said so
      const by = this.serverWrites.delete(p) ? 'server' : 'outside';
      this.emit('copyup', { path: p, lowerPath: copiedFrom.realPath, upperPath: now.realPath, by });
    }
  }
}
