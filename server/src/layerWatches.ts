/**
 * chokidar on a layer's directories, the two ways the watcher uses it (watchPolicy.ts says
 * which): a whole layer (WholeWatch), or single directories (DirWatch). Both watch
 * DIRECTORIES only: chokidar's default of one fs.watch per file cost ~9 KiB each (950 MiB
 * of RSS and 20 s of start-up for 100,000 files). Entries inside a directory are reported
 * by the directory's own inotify watch, which chokidar passes on as 'raw' events (name +
 * watched directory); the watcher looks each one up again anyway.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { encodePath, hasEscapes } from './overlay/index';
import { planWatches } from './watchPlan';

/** What a watch reports to: raw events by real path. */
export interface RawSink {
  /** `event`: chokidar's (add, addDir, change, unlink, unlinkDir) or 'add'/'unlink'/'change' from a raw inotify event. */
  raw(event: string, real: string): void;
  /** A directory made inside a watched one (a whole layer's): what it holds may have no events of its own. */
  newDir(real: string): void;
  error(err: Error): void;
  /** Paths never watched (the work directory, a live mount's merged directory). */
  ignored(real: string): boolean;
}

export function exists(real: string): boolean {
  try {
    return fs.lstatSync(encodePath(real), { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** chokidar's raw events of directory watches, as raw events of the entries they name; `self` takes those about the watched directory itself first. */
function forwardRaw(w: FSWatcher, sink: RawSink, self?: (name: string, dir: string) => boolean): void {
  w.on('raw', (event: string, name: string, opts: unknown) => {
    const dir = (opts as { watchedPath?: string } | undefined)?.watchedPath;
    if (!name || !dir || typeof name !== 'string') return;
    if (self?.(name, dir)) return;
    const real = dir + '/' + name;
    if (sink.ignored(real)) return;
    if (event === 'change') sink.raw('change', real);
    else sink.raw(exists(real) ? 'add' : 'unlink', real);
  });
  w.on('error', (err) => sink.error(err instanceof Error ? err : new Error(String(err))));
}

/**
 * A whole layer: split into subtrees of at most `scanEntries` entries, each watched
 * recursively by a chokidar instance of its own, started one after another (watchPlan.ts);
 * the few directories above them are watched alone, and a directory made in one of those
 * later goes to a recursive instance.
 */
export class WholeWatch {
  private readonly watchers: FSWatcher[] = [];
  private late?: FSWatcher;
  private closed = false;
  /** Subtree roots watched recursively, and directories watched alone. */
  readonly roots: string[] = [];
  readonly alone: string[] = [];
  /** Directories made since the start (each a watch of its own). */
  madeDirs = 0;

  constructor(
    readonly root: string,
    private readonly sink: RawSink,
  ) {}

  /**
   * Plan and start; resolves when every piece has scanned. With `limit`, a layer of more
   * entries or directories is not watched: answers false (and nothing was started).
   */
  async start(scanEntries: number, limit?: { entries: number; dirs: number }): Promise<boolean> {
    const plan = await planWatches(this.root, (p) => this.sink.ignored(p), scanEntries, 200, limit);
    if (!plan || this.closed) return false;
    if (plan.alone.length > 0) {
      this.alone.push(...plan.alone);
      await this.watchPaths(plan.alone, 0);
    }
    for (const group of plan.groups) {
      if (this.closed) return false;
      this.roots.push(...group);
      await this.watchPaths(group, undefined);
    }
    return !this.closed;
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
      ignored: (p: string, stats?: fs.Stats) => (stats !== undefined && !stats.isDirectory()) || this.sink.ignored(p),
    });
    this.watchers.push(w);
    w.on('all', (event, p) => {
      this.sink.raw(event, p);
      if (event === 'addDir') {
        this.madeDirs++;
        // A directory made inside one watched alone: chokidar stops at depth 0, a
        // recursive instance takes it (and what it holds) from here.
        if (depth === 0 && !paths.includes(p)) this.lateWatcher().add(p);
        this.sink.newDir(p);
      }
    });
    forwardRaw(w, this.sink);
    return new Promise((resolve) => w.once('ready', () => resolve()));
  }

  private lateWatcher(): FSWatcher {
    if (!this.late) {
      void this.watchPaths([], undefined);
      this.late = this.watchers[this.watchers.length - 1];
    }
    return this.late;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.watchers.map((w) => w.close()));
  }
}

/**
 * One directory without what is below it (chokidar at depth 0, its entries ignored: the
 * directory's inotify watch names them). `onGone` when the directory itself is removed or
 * renamed away: its watch ends with it.
 */
export class DirWatch {
  private readonly w: FSWatcher;
  /** Resolves when chokidar has taken the directory. */
  readonly ready: Promise<void>;

  constructor(
    readonly dir: string,
    sink: RawSink,
    onGone: () => void,
  ) {
    this.w = watch(dir, {
      ignoreInitial: true,
      usePolling: false,
      followSymlinks: false,
      ignorePermissionErrors: true,
      atomic: false,
      depth: 0,
      ignored: (p: string) => p !== dir,
    });
    this.ready = new Promise((resolve) => this.w.once('ready', () => resolve()));
    const base = path.basename(dir);
    // inotify's IN_DELETE_SELF / IN_MOVE_SELF arrive as a 'rename' of the directory's own name.
    forwardRaw(this.w, sink, (name, watched) => {
      if (name !== base || watched !== dir || exists(dir)) return false;
      onGone();
      return true;
    });
  }

  close(): Promise<void> {
    return this.w.close();
  }
}

/**
 * The directories of one layer watched on their own (DirWatch each): for every overlay
 * directory followed, the layer's copy of it — or, where the layer has none (yet), its
 * nearest existing ancestor, a stand-in: an event naming the next directory down tells the
 * owner (`onMoved`) to set the paths again, and the real directory takes over.
 */
export class FollowedDirs {
  private readonly watches = new Map<string, DirWatch>();
  /** Followed overlay path → the real directory watched for it. */
  private forPath = new Map<string, string>();
  /** Real paths whose appearance (or going) moves a watch: the next directory below a stand-in. */
  private awaited = new Set<string>();
  private closed = false;

  constructor(
    readonly root: string,
    private readonly sink: RawSink,
    private readonly onMoved: () => void,
  ) {}

  /** The real directory to watch for overlay path `p`: the layer's copy, or its nearest existing ancestor. */
  private realDirFor(p: string): string | undefined {
    let real = p === '/' ? this.root : this.root + p;
    for (;;) {
      // chokidar takes string paths: one through a name that is not UTF-8 is watched from above it.
      if (!hasEscapes(real) && !this.sink.ignored(real)) {
        try {
          if (fs.lstatSync(real, { throwIfNoEntry: false })?.isDirectory()) return real;
        } catch {
          /* unreadable: look above */
        }
      }
      if (real.length <= this.root.length) return undefined;
      real = path.dirname(real);
    }
  }

  /**
   * Watch what `paths` (overlay paths, the most wanted first) need, within `budget` real
   * directories; the rest is not watched. Resolves once the new watches are in place.
   */
  async set(paths: readonly string[], budget: number): Promise<void> {
    if (this.closed) return;
    const forPath = new Map<string, string>();
    const awaited = new Set<string>();
    const wanted = new Set<string>();
    for (const p of paths) {
      const real = this.realDirFor(p);
      if (real === undefined) continue;
      if (!wanted.has(real) && wanted.size >= budget) continue;
      wanted.add(real);
      forPath.set(p, real);
      const full = p === '/' ? this.root : this.root + p;
      if (real !== full) awaited.add(real + '/' + full.slice(real.length + 1).split('/')[0]);
    }
    const started: Promise<void>[] = [];
    for (const real of wanted) {
      if (this.watches.has(real)) continue;
      const w = new DirWatch(real, this.sink, () => this.gone(real));
      this.watches.set(real, w);
      started.push(w.ready);
    }
    for (const [real, w] of this.watches) {
      if (wanted.has(real)) continue;
      this.watches.delete(real);
      void w.close();
    }
    // A directory that was missing and now stands for itself: what it got before its watch has no events.
    for (const [p, real] of forPath) {
      const before = this.forPath.get(p);
      if (before !== undefined && before !== real && real.startsWith(before + '/')) this.sink.newDir(real);
    }
    this.forPath = forPath;
    this.awaited = awaited;
    await Promise.all(started);
  }

  /** An event at real path `real`: does it move a watch (a directory appeared or went below a stand-in)? */
  moves(real: string): boolean {
    return this.awaited.has(real);
  }

  private gone(real: string): void {
    const w = this.watches.get(real);
    if (w) {
      this.watches.delete(real);
      void w.close();
    }
    this.sink.raw('unlinkDir', real);
    this.onMoved();
  }

  /** Real directories watched now. */
  get dirs(): string[] {
    return [...this.watches.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.watches.values()];
    this.watches.clear();
    await Promise.all(all.map((w) => w.close()));
  }
}
