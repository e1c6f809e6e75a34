/**
 * The named overlays this server has open: each an engine Overlay, its watcher and,
 * when its upper belongs to a mounted kernel overlay, the route for writes through
 * the merged directory. Every operation the protocol offers, in overlay terms.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { createError, isErrno } from './overlay/errors';
import { encodePath, hasEscapes, Overlay, overlayMounts, upperInUse, type DirEntry, type OverlayStat, type StackSpec } from './overlay/index';
import { findLiveMount, LiveWriter, liveRoute } from './liveMount';
import { MountManager } from './mounting/mounts';
import { stackHash } from './mounting/runtimeDir';
import { holderOf, readState, type Holder } from './mounting/state';
import {
  FileType,
  type DidChangeFile,
  type DidChangeMount,
  type Mount,
  type Mounts,
  type MountState,
  type DidCopyUp,
  type Diff,
  type FileStat,
  type ImageInfo,
  type OverlayInfo,
  type ReadDirectories,
  type ReadFile,
  type WatchLowerLayers,
} from '../../shared/src/protocol';

type DiffChange = Diff.Change;
import { OverlayWatcher } from './watcher';
import { imageFor } from './image/records';
import type { CopyUpWhere } from './copyUpNotices';

export interface RegistryEvents {
  changes: [DidChangeFile.Change[]];
  /** A held mount went away under the server. */
  mount: [DidChangeMount.Params];
  /** A copy-up, and where its stale copy is (for the processes that still read it). */
  copyup: [DidCopyUp.Params, CopyUpWhere];
  log: [string];
}

function fileType(t: string): number {
  return t === 'f' ? FileType.File : t === 'd' ? FileType.Directory : t === 'l' ? FileType.SymbolicLink : FileType.Unknown;
}

/** An open overlay. */
export class ManagedOverlay {
  private live?: LiveWriter;
  private liveInfo?: { merged: string; reachable: boolean };
  /** Handles opened through a live mount's merged directory (ids above this). */
  private static readonly LIVE_BASE = 1 << 30;
  private nextLive = ManagedOverlay.LIVE_BASE;
  /** The mount the server holds for this overlay (Registry.mount). */
  mountState?: MountState;
  /** The image its lower layers are (image/records.ts), when known. */
  readonly image: ImageInfo | undefined;

  private constructor(
    readonly name: string,
    readonly overlay: Overlay,
    readonly watcher: OverlayWatcher,
    private readonly registry: Registry,
  ) {
    this.image = imageFor(overlay.stack.lower);
  }

  static async open(name: string, spec: StackSpec, registry: Registry): Promise<ManagedOverlay> {
    // Writes of an upper a kernel overlay has mounted go through its merged directory
    // (route() below), so such a stack is opened with that directory named.
    const overlay = await Overlay.open(spec.upper && !spec.merged ? { ...spec, merged: findLiveMount(spec.upper)?.merged } : spec);
    const holder: { self?: ManagedOverlay } = {};
    const live = findLiveMount(overlay.stack.upper);
    const watcher = new OverlayWatcher(overlay, (p) => holder.self?.statOrUndefined(p), {
      setting: registry.watchLowerLayers,
      mountedAt: live ? live.merged : undefined,
    });
    const self = new ManagedOverlay(name, overlay, watcher, registry);
    holder.self = self;
    overlay.on('copyup', (e) => {
      watcher.noteServerCopyUp(e.path);
      registry.emit('copyup', { name, path: e.path, lowerPath: e.lowerPath, upperPath: e.upperPath, by: 'server' }, self.whereIs(e.lowerPath));
    });
    watcher.on('changes', (changes) =>
      registry.emit(
        'changes',
        changes.map((c) => ({ name, ...c })),
      ),
    );
    watcher.on('copyup', (e) => registry.emit('copyup', { name, ...e }, self.whereIs(e.lowerPath)));
    watcher.on('error', (err) => registry.emit('log', `watcher of overlay "${name}": ${err.message}`));
    watcher.on('log', (msg) => registry.emit('log', `watcher of overlay "${name}": ${msg}`));
    self.refreshLive();
    void watcher.start().catch((err: unknown) => registry.emit('log', `watcher of overlay "${name}" failed: ${String(err)}`));
    return self;
  }

  info(): OverlayInfo {
    const s = this.overlay.stack;
    const stack: OverlayInfo['stack'] = { lower: s.lower, whiteouts: s.whiteouts, userxattr: s.userxattr };
    if (s.upper) {
      stack.upper = s.upper;
      stack.work = s.work;
    }
    if (s.merged) stack.merged = s.merged;
    const info: OverlayInfo = { name: this.name, stack, readOnly: this.overlay.readOnly, watchReady: this.watcher.ready };
    this.refreshLive();
    if (this.liveInfo) info.liveMount = this.liveInfo;
    if (this.mountState) info.mount = this.mountState;
    if (this.image) info.image = this.image;
    return info;
  }

  /** The lower layer that holds `lowerPath`, and the merged directory of this stack's kernel mount, if mounted. */
  whereIs(lowerPath: string): CopyUpWhere {
    const layerRoot = this.overlay.stack.lower.find((l) => lowerPath.startsWith(l.endsWith('/') ? l : l + '/'));
    const merged = this.liveInfo?.reachable ? this.liveInfo.merged : undefined;
    return { layerRoot, merged };
  }

  /** Look again for a live mount of the upper: a container or the server may have mounted (or unmounted) the stack since. */
  private refreshLive(): void {
    const found = findLiveMount(this.overlay.stack.upper);
    if (found?.merged !== this.liveInfo?.merged) void this.watcher.setMountedAt(found?.merged);
    this.liveInfo = found && { merged: found.merged, reachable: found.reachable };
    if (!found || !found.reachable) this.live = undefined;
    else if (this.live?.merged !== found.merged) this.live = new LiveWriter(this.overlay, found.merged);
  }

  /** The route for a write: undefined = the engine; a LiveWriter = through the live mount (liveMount.ts). */
  private route(syscall: string, p: string, ...more: string[]): LiveWriter | undefined {
    if (this.overlay.readOnly) return undefined; // the engine answers EROFS
    for (const q of [p, ...more]) if (typeof q === 'string' && q.startsWith('/')) this.watcher.noteBeforeWrite(q.replace(/\/+$/, '') || '/');
    const { live, writer } = liveRoute(this.overlay, syscall, this.live);
    this.liveInfo = live && { merged: live.merged, reachable: live.reachable };
    this.live = writer;
    if (this.live) for (const q of [p, ...more]) this.watcher.noteServerWrite(q);
    return this.live;
  }

  // ---------------------------------------------------------------- reads

  toFileStat(st: OverlayStat, symlink: boolean): FileStat {
    const out: FileStat = {
      type: fileType(st.type) | (symlink ? FileType.SymbolicLink : 0),
      ctime: st.ctimeMs,
      mtime: st.mtimeMs,
      size: st.size,
      mode: st.mode,
      ino: st.ino,
      layer: st.layer,
      realPath: st.realPath,
    };
    if (this.overlay.readOnly) out.permissions = 1;
    return out;
  }

  /**
   * A symlink is stat'ed through (its type carries SymbolicLink); a dangling one (ENOENT
   * behind it) is a symlink of unknown type. One that cannot be followed for another reason
   * (a loop, a path through a file) fails with that error — as VS Code's disk provider does.
   */
  async stat(p: string): Promise<FileStat> {
    const l = await this.overlay.lstat(p);
    if (l.type !== 'l') {
      const st = this.toFileStat(l, false);
      this.watcher.noteServed(p, st);
      return st;
    }
    try {
      return this.toFileStat(await this.overlay.stat(p), true);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      return this.toFileStat(l, false); // dangling link: a symlink of unknown target
    }
  }

  statOrUndefined(p: string): FileStat | undefined {
    try {
      const l = this.overlay.statSync(p, false);
      if (l.type !== 'l') return this.toFileStat(l, false);
      try {
        return this.toFileStat(this.overlay.statSync(p, true), true);
      } catch {
        return this.toFileStat(l, false);
      }
    } catch {
      return undefined;
    }
  }

  async readDirectory(p: string): Promise<[string, number][]> {
    return this.listing(p, await this.overlay.readdir(p));
  }

  /** `p`'s listing, then breadth first those of the directories below it while the entries stay within `budget`. */
  async readDirectories(p: string, budget: number): Promise<ReadDirectories.Listing[]> {
    return this.overlay.readdirTree(p, budget).map((l) => {
      const entries = this.listing(l.path, l.entries);
      return { path: l.path, names: entries.map(([n]) => n), types: entries.map(([, t]) => t) };
    });
  }

  /**
   * Directory `dir`'s entries as VS Code lists them: a symlink also carries the type of what
   * it points to (none when dangling); one that cannot be followed otherwise (a loop, a path
   * through a file) is left out, as VS Code's disk provider leaves it out.
   */
  private listing(dir: string, entries: DirEntry[]): [string, number][] {
    const base = dir.endsWith('/') ? dir : dir + '/';
    const out: [string, number][] = [];
    for (const e of entries) {
      if (e.type !== 'l') {
        out.push([e.name, fileType(e.type)]);
        continue;
      }
      try {
        out.push([e.name, FileType.SymbolicLink | fileType(this.overlay.statSync(base + e.name, true).type)]);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) out.push([e.name, FileType.SymbolicLink]);
      }
    }
    return out;
  }

  async readFile(p: string, inline: boolean): Promise<ReadFile.Result> {
    const st = await this.overlay.stat(p);
    if (st.type === 'd') throw createError('EISDIR', 'open', p);
    if (st.type !== 'f') throw createError('EINVAL', 'open', p, 'not a regular file');
    this.watcher.noteServed(p, this.toFileStat(st, false));
    const out: ReadFile.Result = { realPath: st.realPath, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, layer: st.layer };
    // A real path with escaped bytes (overlay/names.ts) cannot be opened by the client as a string.
    if (inline || hasEscapes(st.realPath)) out.data = (await this.overlay.readFile(p)).toString('base64');
    return out;
  }

  // ---------------------------------------------------------------- writes

  /** Runs a write of `paths`; then the watcher looks at them (reported even where nothing watches). */
  private async changing<T>(paths: string[], op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } finally {
      this.watcher.touched(...paths);
    }
  }

  async writeFile(p: string, data: Uint8Array, create: boolean, overwrite: boolean): Promise<void> {
    const live = this.route('open', p);
    if (live) return this.changing([p], () => live.writeFile(p, data, create, overwrite));
    await this.changing([p], () => this.overlay.writeFile(p, data, { create, overwrite }));
  }

  async delete(p: string, recursive: boolean): Promise<void> {
    const live = this.route('rm', p);
    if (live) return this.changing([p], () => live.delete(p, recursive));
    if (recursive) return this.changing([p], () => this.overlay.rm(p, { recursive: true }));
    const st = await this.overlay.lstat(p);
    if (st.type === 'd') return this.changing([p], () => this.overlay.rmdir(p));
    return this.changing([p], () => this.overlay.unlink(p));
  }

  /**
   * Revert to the lowers' version. Under a mount the server holds, the mount is taken down for
   * the moment (no kernel operation drops an upper copy or a whiteout) and mounted again.
   * Under another's mount (a running container) the upper cannot be changed: `throughMount`
   * writes the lower copy back through the mount instead; without it the answer is EBUSY.
   */
  async revert(p: string, throughMount = false): Promise<void> {
    const live = this.route('revert', p);
    if (!live) return this.changing([p], () => this.overlay.revert(p));
    if (this.mountState && this.mountState.path === live.merged) {
      await this.registry.mounts.remount(this.name, this.overlay.stack, () => this.changing([p], () => this.overlay.revert(p)));
      return;
    }
    if (!throughMount) throw upperInUse('revert', this.overlay.stack.upper as string, live.merged, true);
    await this.changing([p], () => this.restoreThroughMount(live, p));
  }

  /** The lower copy of `p` written through the mount: a file's bytes and mode, a symlink, or a whole directory. */
  private async restoreThroughMount(live: LiveWriter, p: string): Promise<void> {
    const lower = await this.overlay.lowerResolve(p);
    if (!lower) return live.delete(p, true); // added: deleting it is the revert
    const real = live.pathOf(p, 'revert');
    await live.through('revert', p, async () => {
      await fs.promises.rm(encodePath(real), { recursive: true, force: true });
      await fs.promises.cp(lower.realPath, real, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    });
  }

  /** Changes against the lowers, each with the entry's type and the lower layer it hides or replaces. */
  diff(): Promise<DiffChange[]> {
    return this.overlay.diff();
  }

  async rename(from: string, to: string, overwrite: boolean): Promise<void> {
    const live = this.route('rename', from, to);
    if (live) return this.changing([from, to], () => live.rename(from, to, overwrite));
    await this.changing([from, to], () => this.overlay.rename(from, to, { overwrite }));
  }

  async createDirectory(p: string): Promise<void> {
    const live = this.route('mkdir', p);
    if (live) return this.changing([p], () => live.mkdir(p));
    await this.changing([p], () => this.overlay.mkdir(p));
  }

  async copy(from: string, to: string, overwrite: boolean): Promise<void> {
    const live = this.route('copyfile', to, from);
    if (live) return this.changing([to], () => live.copy(from, to, overwrite));
    await this.changing([to], () => this.overlay.copy(from, to, { overwrite }));
  }

  // ---------------------------------------------------------------- handles

  async open(p: string, flags: { write: boolean; create: boolean; truncate: boolean; exclusive: boolean }): Promise<number> {
    if (flags.write || flags.create || flags.truncate) {
      const live = this.route('open', p);
      if (live) {
        const id = this.nextLive++;
        await this.changing([p], () => live.open(p, id, flags));
        return id;
      }
      return this.changing([p], () => this.overlay.open(p, flags));
    }
    return this.overlay.open(p, flags);
  }

  async read(h: number, position: number, length: number): Promise<Buffer> {
    if (this.live?.has(h)) return this.live.read(h, position, length);
    return this.overlay.readHandle(h, position, length);
  }

  async write(h: number, position: number, data: Uint8Array): Promise<number> {
    if (this.live?.has(h)) return this.live.write(h, position, data);
    return this.overlay.writeHandle(h, position, data);
  }

  async closeHandle(h: number): Promise<void> {
    if (this.live?.has(h)) return this.live.close(h);
    await this.overlay.closeHandle(h);
  }

  async close(): Promise<void> {
    this.watcher.flushNow();
    await this.watcher.close();
    await this.live?.closeAll();
    await this.overlay.close();
  }
}

/** Named overlays. */
export class Registry extends EventEmitter<RegistryEvents> {
  private readonly map = new Map<string, ManagedOverlay>();
  private mountManager?: MountManager;
  private holder?: Holder;

  /**
   * Who holds the mounts this server makes: the process that started it (the extension host:
   * LSP's processId), so a server restarted by the same window adopts them, else the server.
   */
  setHolder(pid: number | null | undefined): void {
    this.holder = (pid ? holderOf(pid) : undefined) ?? holderOf(process.pid);
  }

  get mounts(): MountManager {
    if (!this.mountManager) {
      this.mountManager = new MountManager(this.holder ?? (holderOf(process.pid) as Holder));
      this.mountManager.on('log', (m) => this.emit('log', m));
      this.mountManager.on('lost', (at, message) => {
        for (const o of this.map.values()) {
          if (o.mountState?.path !== at) continue;
          o.mountState = undefined;
          this.emit('mount', { name: o.name, message });
        }
      });
    }
    return this.mountManager;
  }

  /** overlay.watchLowerLayers, for every overlay (watchPolicy.ts). */
  watchLowerLayers: WatchLowerLayers = 'auto';

  /** Server options that follow VS Code settings (overlay/configure). */
  async configure(opts: { watchLowerLayers?: WatchLowerLayers }): Promise<void> {
    if (opts.watchLowerLayers && opts.watchLowerLayers !== this.watchLowerLayers) {
      this.watchLowerLayers = opts.watchLowerLayers;
      await Promise.all([...this.map.values()].map((o) => o.watcher.configure(this.watchLowerLayers)));
    }
  }

  get(name: unknown): ManagedOverlay {
    if (typeof name !== 'string') throw createError('EINVAL', 'overlay', String(name), 'malformed params: "name" must be a string');
    const o = this.map.get(name);
    if (!o) throw createError('ENOENT', 'overlay', name, `unknown overlay "${name}"`);
    return o;
  }

  async add(name: string, spec: StackSpec): Promise<OverlayInfo> {
    if (name === '') throw createError('EINVAL', 'overlay', name, 'an overlay needs a non-empty name');
    const o = await ManagedOverlay.open(name, spec, this);
    const old = this.map.get(name);
    this.map.set(name, o);
    if (old) {
      // The same stack keeps its mount; another one lets it go.
      if (old.mountState && this.mountManager?.heldFor(name) === old.mountState.path) {
        if (stackHash(o.overlay.stack) === stackHash(old.overlay.stack)) o.mountState = old.mountState;
        else await this.mounts.release(name);
      }
      await old.close();
    }
    return o.info();
  }

  /** Mounts overlay `name` (mounting/mounts.ts), unless a mount the server does not own already uses its upper. */
  async mount(name: string): Promise<Mount.Result> {
    const o = this.get(name);
    const live = findLiveMount(o.overlay.stack.upper);
    const ours = live && this.mountManager?.heldFor(name) === live.merged;
    if (live && !ours && !readState(this.mounts.runtimeDir).mounts.some((r) => r.path === live.merged)) {
      return live.reachable
        ? { existing: live.merged }
        : { failure: `not mounted: the upper directory is mounted at ${live.merged}, which is not reachable from here` };
    }
    const r = await this.mounts.mount(name, o.overlay.stack);
    o.mountState = r.mount;
    return r;
  }

  /** Lets go of overlay `name`'s mount (unmounted when no other window holds it). */
  async unmount(name: string): Promise<void> {
    const o = this.get(name);
    o.mountState = undefined;
    const failure = await this.mountManager?.release(name);
    if (failure) this.emit('log', `[mount] ${failure}`);
  }

  /** What `overlay/mounts` answers. */
  mountsList(): Mounts.Result {
    return { runtimeDir: this.mounts.runtimeDir, overlays: overlayMounts().map((m) => ({ merged: m.spec.merged, spec: m.spec })) };
  }

  async remove(name: string): Promise<void> {
    const o = this.get(name);
    this.map.delete(name);
    if (o.mountState) await this.unmountQuietly(name);
    await o.close();
  }

  private async unmountQuietly(name: string): Promise<void> {
    const failure = await this.mountManager?.release(name).catch((err: unknown) => String(err));
    if (failure) this.emit('log', `[mount] ${failure}`);
  }

  list(): OverlayInfo[] {
    return [...this.map.values()].map((o) => o.info());
  }

  /** A clean shutdown: held mounts linger for the next server (mounts.ts), then every overlay closes. */
  /** A server exiting without a shutdown (its window died first): its mounts linger as after one (MountManager.shutdownSync). */
  exitingNow(): void {
    this.mountManager?.shutdownSync();
  }

  async closeAll(): Promise<void> {
    await this.mountManager?.shutdown().catch((err: unknown) => this.emit('log', `[mount] shutdown: ${String(err)}`));
    for (const [name, o] of [...this.map]) {
      this.map.delete(name);
      await o.close();
    }
  }
}
