/**
 * Live watching of one overlay: raw layer events mapped to what the MERGED view shows.
 *
 * What is watched in each layer is the policy of watchPolicy.ts (whole, followed, not at
 * all); the chokidar watches are layerWatches.ts. The directories followed are those of
 * the overlay/watch requests (VS Code's own, and the directories the extension follows
 * for the user), never whole trees.
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
import { FollowedDirs, WholeWatch, exists, type RawSink } from './layerWatches';
import { LayerView } from './overlay/lookup';
import { hasEscapes } from './overlay/index';
import { readdirEntries } from './overlay/names';
import { splitRequestPath } from './overlay/paths';
import { lowerPlan, mountedLowers, watchTuning, type LayerPlan, type WatchLowerLayers } from './watchPolicy';
import { higherLayer, layerDepth, type LayerRef, type Overlay, type RawEventKind as RawKind } from './overlay/index';
import { FileChangeType, type DidChangeFile, type FileStat, type Watching } from '../../shared/src/protocol';

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
  /** Something worth the server log (a layer switched how it is watched). */
  log: [string];
}

/** One layer and how it is watched now. */
interface LayerWatch {
  ref: LayerRef;
  root: string;
  plan: LayerPlan;
  /** Lower layers: cannot change (immutable), so listings need not look at them afresh. */
  immutable: boolean;
  whole?: WholeWatch;
  followed?: FollowedDirs;
}

/** One overlay/watch request. */
interface WatchRequest {
  path: string;
  recursive: boolean;
}

/** Merged states remembered (previous states of paths, for change detection). */
const CACHE_MAX = 20_000;
const DEDUPE_MS = 10_000;
/** Copy-ups and writes of the server remembered for deduplication, at most. */
const NOTED_MAX = 10_000;
/** Directories whose names that are not UTF-8 are remembered, at most. */
const ESCAPED_DIRS_MAX = 1_000;

export interface WatcherOptions {
  batchMs?: number;
  /** Entries chokidar is given to scan at once (see watchPlan.ts). */
  scanEntries?: number;
  /** overlay.watchLowerLayers. */
  setting?: WatchLowerLayers;
  /** The merged directory of a live mount of this stack, when there is one: its lowers cannot change. */
  mountedAt?: string;
}

/** Remember `p` now, dropping the oldest beyond NOTED_MAX. */
function noteBounded(m: Map<string, number>, p: string): void {
  m.delete(p);
  m.set(p, Date.now());
  if (m.size > NOTED_MAX) m.delete(m.keys().next().value as string);
}

export class OverlayWatcher extends EventEmitter<WatcherEvents> {
  private readonly roots: { root: string; layer: LayerRef }[];
  private readonly lowerView?: LayerView;
  private readonly cache = new Map<string, MergedState | null>();
  private pending = new Map<string, Pending>();
  private timer?: NodeJS.Timeout;
  private readonly serverCopyUps = new Map<string, number>();
  private readonly serverWrites = new Map<string, number>();
  private closed = false;
  ready = false;
  private readonly batchMs: number;
  private readonly scanEntries: number;
  private setting: WatchLowerLayers;
  private mountedAt?: string;
  private readonly layers: LayerWatch[] = [];
  private readonly requests = new Map<number, WatchRequest>();
  private followTimer?: NodeJS.Timeout;
  private following: Promise<void> = Promise.resolve();
  private readonly sink: RawSink;

  constructor(
    private readonly overlay: Overlay,
    private readonly statOf: (p: string) => FileStat | undefined,
    opts: WatcherOptions = {},
  ) {
    super();
    this.batchMs = opts.batchMs ?? 25;
    this.scanEntries = opts.scanEntries ?? 20_000;
    this.setting = opts.setting ?? 'auto';
    this.mountedAt = opts.mountedAt;
    const stack = overlay.stack;
    const roots: { root: string; layer: LayerRef }[] = stack.lower.map((root, i) => ({ root, layer: i }));
    if (stack.upper) {
      roots.unshift({ root: stack.upper, layer: 'upper' });
      this.lowerView = new LayerView({ ...stack, upper: undefined, work: undefined });
    }
    // Longest root first, so a layer nested in another maps to itself.
    this.roots = roots.sort((a, b) => b.root.length - a.root.length);
    this.sink = {
      raw: (event, real) => this.rawEvent(event, real),
      newDir: (real) => this.newDir(real),
      error: (err) => this.emit('error', err),
      ignored: (p) => this.ignored(p),
    };
  }

  /**
   * Start watching: each layer as the policy says (watchPolicy.ts). The upper is counted
   * first (a bounded walk): watched whole when small, else followed. Resolves when the
   * layers watched whole have been scanned.
   */
  async start(): Promise<void> {
    const upper = this.overlay.stack.upper;
    if (upper) {
      // Followed while it is being counted, so nothing asked for meanwhile is missed.
      const u: LayerWatch = { ref: 'upper', root: upper, plan: { mode: 'followed', reason: 'being counted' }, immutable: false };
      this.layers.push(u);
      this.follow(u);
    }
    this.planLowers();
    this.applyChecks();
    const starts = this.layers.filter((l) => l.whole).map((l) => this.startWhole(l));
    if (upper) starts.push(this.startUpper(this.layers[0]));
    await Promise.all(starts);
    this.ready = true;
  }

  private async startUpper(u: LayerWatch): Promise<void> {
    const whole = new WholeWatch(u.root, this.sink);
    const small = await whole.start(this.scanEntries, { entries: watchTuning.upperWholeEntries, dirs: watchTuning.upperWholeDirs });
    if (this.closed || !small) {
      await whole.close();
      if (!this.closed)
        u.plan = {
          mode: 'followed',
          reason: `the upper holds more than ${watchTuning.upperWholeEntries} entries or ${watchTuning.upperWholeDirs} directories`,
        };
      return;
    }
    u.whole = whole;
    u.plan = { mode: 'whole', reason: 'the upper is small' };
    await this.unfollow(u);
  }

  private async startWhole(l: LayerWatch): Promise<void> {
    await l.whole?.start(this.scanEntries);
  }

  /** Decide (again) how each lower layer is watched, and start or stop what changed. */
  private planLowers(): void {
    const mounted = mountedLowers();
    if (this.mountedAt !== undefined) for (const l of this.overlay.stack.lower) mounted.set(l, this.mountedAt);
    this.overlay.stack.lower.forEach((root, i) => {
      const plan = lowerPlan(root, this.setting, mounted);
      let l = this.layers.find((x) => x.ref === i);
      if (!l) {
        l = { ref: i, root, plan, immutable: false };
        this.layers.push(l);
      } else if (l.plan.mode === plan.mode) {
        l.plan = plan;
      } else {
        if (l.whole) void l.whole.close();
        l.whole = undefined;
        void this.unfollow(l);
      }
      l.plan = plan;
      l.immutable = this.setting === 'auto' && plan.mode === 'none';
      if (plan.mode === 'whole' && !l.whole) l.whole = new WholeWatch(root, this.sink);
      if (plan.mode === 'followed' && !l.followed) this.follow(l);
    });
  }

  /** Listings look at the lower directories afresh where their changes are not seen (lookup.ts). */
  private applyChecks(): void {
    this.overlay.view.freshLowers = this.overlay.stack.lower.map((_, i) => {
      const l = this.layers.find((x) => x.ref === i);
      return !l || !(l.immutable || l.plan.mode === 'whole');
    });
  }

  /** overlay.watchLowerLayers changed. */
  async configure(setting: WatchLowerLayers): Promise<void> {
    if (setting === this.setting) return;
    this.setting = setting;
    await this.replanLowers();
  }

  /** A live mount of the stack appeared or went (its lowers are immutable while it is there). */
  async setMountedAt(merged: string | undefined): Promise<void> {
    if (merged === this.mountedAt) return;
    this.mountedAt = merged;
    await this.replanLowers();
  }

  private async replanLowers(): Promise<void> {
    if (this.closed) return;
    this.planLowers();
    this.applyChecks();
    await Promise.all(this.layers.filter((l) => l.whole && l.ref !== 'upper').map((l) => this.startWhole(l)));
    await this.applyFollowed();
  }

  // ---------------------------------------------------------------- watch requests

  /** overlay/watch: follow `p` (and, where a layer is watched whole, what is below it). */
  async watch(id: number, p: string, recursive: boolean): Promise<void> {
    splitRequestPath(p, 'watch'); // EINVAL for what is not an overlay path
    this.requests.delete(id);
    this.requests.set(id, { path: p, recursive });
    if (this.requests.size > watchTuning.requests) {
      const oldest = [...this.requests].find(([, r]) => !r.recursive) ?? [...this.requests][0];
      this.requests.delete(oldest[0]);
    }
    await this.applyFollowed();
  }

  /** overlay/unwatch. */
  async unwatch(id: number): Promise<void> {
    if (!this.requests.delete(id)) return;
    this.scheduleFollow();
  }

  /** The overlay directories followed, the newest request first, symlinks resolved. */
  private followedPaths(): string[] {
    const out = new Set<string>();
    for (const p of [...this.requests.values()].map((r) => r.path).reverse()) {
      let canonical = p;
      try {
        canonical = this.overlay.view.resolve(splitRequestPath(p, 'watch'), true, 'watch', p).path;
      } catch {
        /* a path through a missing directory: followed as it is named */
      }
      out.add(canonical.length > 1 ? canonical.replace(/\/+$/, '') : '/');
    }
    return [...out];
  }

  private follow(l: LayerWatch): void {
    l.followed = new FollowedDirs(l.root, this.sink, () => this.scheduleFollow());
  }

  private async unfollow(l: LayerWatch): Promise<void> {
    const f = l.followed;
    l.followed = undefined;
    await f?.close();
  }

  private scheduleFollow(): void {
    if (this.followTimer || this.closed) return;
    this.followTimer = setTimeout(() => {
      this.followTimer = undefined;
      void this.applyFollowed();
    }, 20);
  }

  /** Set every followed layer's watches to the requests as they are now (one at a time). */
  private applyFollowed(): Promise<void> {
    const run = this.following.then(async () => {
      if (this.closed) return;
      const paths = this.followedPaths();
      const followed = this.layers.filter((l) => l.followed);
      const budget = Math.max(1, Math.floor(watchTuning.followedDirs / Math.max(1, followed.length)));
      await Promise.all(followed.map((l) => l.followed?.set(paths, budget)));
    });
    this.following = run.catch((err: unknown) => {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    });
    return run;
  }

  /** How each layer is watched now (overlay/watching). */
  state(): Watching.Layer[] {
    const order = (l: LayerWatch): number => layerDepth(l.ref);
    return [...this.layers]
      .sort((a, b) => order(a) - order(b))
      .map((l) => ({
        layer: l.ref,
        root: l.root,
        mode: l.plan.mode,
        reason: l.plan.reason,
        roots: l.whole ? [...l.whole.roots] : [],
        dirs: l.whole ? [...l.whole.alone] : (l.followed?.dirs ?? []),
      }));
  }

  /** The work directory and a live mount's merged directory are never watched (they are not layers). */
  private ignored(p: string): boolean {
    const { work, merged } = this.overlay.stack;
    return [work, merged].some((d) => !!d && (p === d || p.startsWith(d + '/')));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.followTimer) clearTimeout(this.followTimer);
    this.timer = undefined;
    await Promise.all(this.layers.map(async (l) => Promise.all([l.whole?.close(), l.followed?.close()])));
  }

  // ---------------------------------------------------------------- raw events

  /** A raw event from a watch: moves a followed watch where one waits for it; the upper watched whole stops when it grew too big. */
  private rawEvent(event: string, real: string): void {
    for (const l of this.layers) if (l.followed?.moves(real)) this.scheduleFollow();
    this.raw(event, real);
  }

  /** A directory made in a watched one: report what it holds; an upper watched whole that grew too big is followed from now on. */
  private newDir(real: string): void {
    this.scanNew(real);
    for (const ms of [60, 300]) setTimeout(() => this.scanNew(real), ms).unref();
    const u = this.layers.find((l) => l.ref === 'upper');
    if (u?.whole && u.whole.madeDirs > watchTuning.upperWholeDirs) {
      const whole = u.whole;
      u.whole = undefined;
      u.plan = { mode: 'followed', reason: `the upper grew past ${watchTuning.upperWholeDirs} directories` };
      this.emit('log', `the upper ${u.root} grew past ${watchTuning.upperWholeDirs} directories: from now on only the directories followed are watched`);
      void whole.close();
      this.follow(u);
      void this.applyFollowed();
    }
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
    this.escapedNames.delete(dir);
    if (now.length > 0) this.escapedNames.set(dir, new Set(now));
    if (this.escapedNames.size > ESCAPED_DIRS_MAX) this.escapedNames.delete(this.escapedNames.keys().next().value as string);
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
    noteBounded(this.serverCopyUps, p);
  }

  /** A write of ours routed through a live mount: a copy-up the watcher sees there is by the server. */
  noteServerWrite(p: string): void {
    noteBounded(this.serverWrites, p);
  }

  /**
   * The server changed `paths` (a write answered): look at them as if a raw event had come,
   * so the change is reported even where nothing watches (a big upper is only followed).
   * When the watch sees it too, the second look finds the state it remembered: no event twice.
   */
  touched(...paths: string[]): void {
    for (const p of paths) {
      if (typeof p !== 'string' || !p.startsWith('/')) continue;
      const rel = p.replace(/\/+$/, '') || '/';
      if (!this.pending.has(rel)) this.pending.set(rel, { layer: 'upper', kind: 'change' });
    }
    if (!this.timer && this.pending.size > 0)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.batchMs);
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
