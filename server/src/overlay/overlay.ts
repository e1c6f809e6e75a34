/**
 * The overlay engine: one stack of layers answered and changed exactly as Linux
 * overlayfs would. Paths are absolute from the overlay root; errors are Node-style.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { CopyUp, copyMetadata } from './copyUp';
import { diffUpper } from './diff';
import { asOverlayError, createError } from './errors';
import { Handles, type OpenFlags } from './handles';
import { keepsInode, writeInPlace } from './inPlaceWrite';
import { LayerView, typeOf, type Entry, type Hit } from './lookup';
import { Markers } from './markers';
import { encodePath, readlinkName } from './names';
import { splitRequestPath } from './paths';
import { W, X, checkAccess, checkOwner, checkRemove } from './permission';
import { dropPrivilegesAfterWrite } from './privileges';
import { resolveStack, type ResolvedStack } from './stack';
import type { Change, CopyUpEvent, DirEntry, LayerInfo, OverlayStat, ResolveResult, StackSpec, WriteOptions } from './types';
import { WorkDir } from './workdir';

export interface OverlayEvents {
  copyup: [CopyUpEvent];
}

function toStat(top: Hit): OverlayStat {
  const st = top.st;
  return {
    type: typeOf(st),
    size: st.size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    nlink: st.nlink,
    ino: st.ino,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    atimeMs: st.atimeMs,
    birthtimeMs: st.birthtimeMs,
    rdev: st.rdev,
    layer: top.layer.ref,
    realPath: top.real,
  };
}

const O_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

export class Overlay extends EventEmitter<OverlayEvents> {
  readonly stack: ResolvedStack;
  readonly view: LayerView;
  private readonly work?: WorkDir;
  private readonly markers?: Markers;
  private readonly copyUp?: CopyUp;
  private readonly handles: Handles;
  private lock: Promise<unknown> = Promise.resolve();

  /** Validate the stack and open it. Throws a Node-style error naming the problem. */
  static async open(spec: StackSpec): Promise<Overlay> {
    return new Overlay(resolveStack(spec));
  }

  constructor(stack: ResolvedStack) {
    super();
    this.stack = stack;
    this.view = new LayerView(stack);
    if (stack.upper && stack.work) {
      this.work = new WorkDir(stack.work);
      this.work.cleanStale();
      this.markers = new Markers(this.view, this.work);
      this.copyUp = new CopyUp(
        this.view,
        this.work,
        (c) => this.dirEntry(c, 'copyup'),
        (e) => this.emit('copyup', e),
      );
    }
    this.handles = new Handles();
  }

  /**
   * Something changed in a lower layer on disk (the watcher saw it): forget cached
   * lower-layer lookups. Upper-layer state is never cached.
   */
  invalidateLowers(): void {
    this.view.invalidateLowers();
  }

  get readOnly(): boolean {
    return this.copyUp === undefined;
  }

  // ---------------------------------------------------------------- internals

  private entry(p: string, follow: boolean, syscall: string): Entry {
    const comps = splitRequestPath(p, syscall);
    try {
      return this.view.resolve(comps, follow, syscall, p);
    } catch (err) {
      throw asOverlayError(err, syscall, p);
    }
  }

  /** An existing directory by canonical components (parents of entries we already resolved). */
  private dirEntry(comps: string[], syscall: string): Entry {
    const e = this.view.resolve(comps, false, syscall, '/' + comps.join('/'));
    if (!e.top) throw createError('ENOENT', syscall, e.path);
    if (!e.top.st.isDirectory()) throw createError('ENOTDIR', syscall, e.path);
    return e;
  }

  private existing(p: string, follow: boolean, syscall: string): Entry & { top: Hit } {
    const e = this.entry(p, follow, syscall);
    if (!e.top) throw createError('ENOENT', syscall, p);
    return e as Entry & { top: Hit };
  }

  private writer(syscall: string, p: string): { copyUp: CopyUp; markers: Markers; work: WorkDir } {
    if (!this.copyUp || !this.markers || !this.work) throw createError('EROFS', syscall, p, 'read-only file system (the overlay has no upper layer)');
    return { copyUp: this.copyUp, markers: this.markers, work: this.work };
  }

  /** Mutations run one at a time; reads never wait. */
  private mutate<T>(syscall: string, p: string, fn: () => Promise<T> | T): Promise<T> {
    const run = this.lock.then(async () => {
      try {
        return await fn();
      } catch (err) {
        throw asOverlayError(err, syscall, p);
      }
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  private parentUpper(e: Entry): string {
    const { copyUp } = this.writer('write', e.path);
    return copyUp.dir(this.dirEntry(e.comps.slice(0, -1), 'write'));
  }

  private name(e: Entry): string {
    return e.comps[e.comps.length - 1];
  }

  /** Install a new non-directory made by `make(tmp)` at `e` (which does not exist), over a whiteout if any. */
  private async placeNew(e: Entry, make: (tmp: string) => Promise<void> | void): Promise<string> {
    const { markers, work } = this.writer('create', e.path);
    this.checkCreate(e, 'open', e.path);
    const dir = this.parentUpper(e);
    const dest = dir + '/' + this.name(e);
    const tmp = work.tempName();
    try {
      await make(tmp);
      if (this.view.format === 'kernel')
        fs.renameSync(encodePath(tmp), encodePath(dest)); // atomically replaces a whiteout
      else {
        fs.renameSync(encodePath(tmp), encodePath(dest));
        markers.clearWhiteout(dir, this.name(e));
      }
    } catch (err) {
      fs.rmSync(encodePath(tmp), { force: true, recursive: true });
      throw err;
    }
    return dest;
  }

  /** The merged parent directory's stat (undefined for the root). */
  private parentStat(e: Entry): fs.Stats | undefined {
    return e.parent[0]?.st;
  }

  /** May the caller create a name in e's parent directory (write and search on it)? */
  private checkCreate(e: Entry, syscall: string, p: string): void {
    const dir = this.parentStat(e);
    if (dir) checkAccess(dir, W | X, syscall, p);
  }

  /** May the caller remove or replace e (an existing name) in its parent directory? */
  private checkRemove(e: Entry & { top: Hit }, syscall: string, p: string): void {
    const dir = this.parentStat(e);
    if (dir) checkRemove(dir, e.top.st, syscall, p);
  }

  private makeDir(e: Entry, mode: number): string {
    const { markers, work } = this.writer('mkdir', e.path);
    this.checkCreate(e, 'mkdir', e.path);
    const dir = this.parentUpper(e);
    const name = this.name(e);
    const dest = dir + '/' + name;
    if (markers.hasWhiteout(dir, name)) {
      // Over a whiteout the new directory must not merge with what was deleted: opaque.
      if (this.view.format === 'kernel') {
        const tmp = work.tempName();
        fs.mkdirSync(encodePath(tmp), { mode });
        markers.setOpaque(tmp);
        fs.unlinkSync(encodePath(dest));
        fs.renameSync(encodePath(tmp), encodePath(dest));
      } else {
        fs.mkdirSync(encodePath(dest), { mode });
        markers.setOpaque(dest);
        markers.clearWhiteout(dir, name);
      }
    } else {
      fs.mkdirSync(encodePath(dest), { mode });
    }
    return dest;
  }

  /** Remove `e` (any type, a directory with everything below) from the merged view. */
  private removeEntry(e: Entry & { top: Hit }): void {
    const { markers, work } = this.writer('rm', e.path);
    const lowerPos = this.view.lowerPositive(e);
    const top = e.top;
    if (top.layer.ref === 'upper') {
      const dir = top.real.slice(0, top.real.length - this.name(e).length - 1);
      if (!top.st.isDirectory()) {
        if (lowerPos) markers.whiteout(dir, this.name(e));
        else fs.unlinkSync(encodePath(top.real));
        return;
      }
      const trash = work.tempName();
      fs.renameSync(encodePath(top.real), encodePath(trash));
      if (lowerPos) markers.whiteout(dir, this.name(e));
      fs.rmSync(encodePath(trash), { recursive: true, force: true });
      return;
    }
    markers.whiteout(this.parentUpper(e), this.name(e));
  }

  // ---------------------------------------------------------------- reads

  async lstat(p: string): Promise<OverlayStat> {
    return this.statSync(p, false);
  }

  async stat(p: string): Promise<OverlayStat> {
    return this.statSync(p, true);
  }

  statSync(p: string, follow = true): OverlayStat {
    const e = this.existing(p, follow, follow ? 'stat' : 'lstat');
    if (e.comps.length === 0) return toStat(this.view.rootEntry().top as Hit);
    return toStat(e.top);
  }

  async readdir(p: string): Promise<DirEntry[]> {
    return this.readdirSync(p);
  }

  readdirSync(p: string): DirEntry[] {
    return this.readdirTree(p, 0)[0].entries;
  }

  /**
   * The listing of directory `p`, then breadth first those of the directories below it
   * (not through symlinks) while the entries listed stay within `budget`. Each listing
   * is whole; one that cannot be read is left out (asked for itself, it fails there).
   * Each directory is looked up from its parent's merge, not from the root again.
   */
  readdirTree(p: string, budget: number): { path: string; entries: DirEntry[] }[] {
    const root = this.existing(p, true, 'scandir');
    if (!root.top.st.isDirectory()) throw createError('ENOTDIR', 'scandir', p);
    const out: { path: string; entries: DirEntry[] }[] = [];
    try {
      out.push({ path: p, entries: this.view.readdirCached(root).slice() }); // callers may sort it
    } catch (err) {
      throw asOverlayError(err, 'scandir', p);
    }
    const dirs: Entry[] = [root];
    let left = budget - out[0].entries.length;
    for (let i = 0; i < out.length && left > 0; i++) {
      const base = out[i].path === '/' ? '/' : out[i].path + '/';
      for (const d of out[i].entries) {
        if (d.type !== 'd') continue;
        const e = this.view.child(dirs[i], d.name);
        if (!e.top?.st.isDirectory()) continue; // changed since it was listed
        let entries: DirEntry[];
        try {
          entries = this.view.readdirCached(e).slice();
        } catch {
          continue;
        }
        if (entries.length > left) {
          left = 0;
          break;
        }
        out.push({ path: base + d.name, entries });
        dirs.push(e);
        left -= entries.length;
      }
    }
    return out;
  }

  /** Open the real file that serves `p` for reading; only regular files are ever opened. */
  async openRealForRead(p: string, syscall: string): Promise<{ fh: fs.promises.FileHandle; entry: Entry & { top: Hit } }> {
    const e = this.existing(p, true, syscall);
    if (e.top.st.isDirectory()) throw createError('EISDIR', syscall, p);
    if (!e.top.st.isFile()) throw createError('EINVAL', syscall, p, 'not a regular file (devices, FIFOs and sockets are never opened)');
    try {
      return { fh: await fs.promises.open(encodePath(e.top.real), O_READ), entry: e };
    } catch (err) {
      throw asOverlayError(err, syscall, p);
    }
  }

  async readFile(p: string): Promise<Buffer> {
    const { fh } = await this.openRealForRead(p, 'open');
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  /** Read up to `length` bytes at `offset` (fewer at end of file). */
  async read(p: string, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
      throw createError('EINVAL', 'read', p, 'offset and length must be non-negative integers');
    const { fh } = await this.openRealForRead(p, 'read');
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  async readlink(p: string): Promise<string> {
    const e = this.existing(p, false, 'readlink');
    if (!e.top.st.isSymbolicLink()) throw createError('EINVAL', 'readlink', p);
    return readlinkName(e.top.real);
  }

  /** Which layer serves `p` (not following a final symlink), and its real path. */
  async resolve(p: string): Promise<ResolveResult> {
    const e = this.existing(p, false, 'resolve');
    const top = e.comps.length === 0 ? this.view.layers[0] : e.top.layer;
    return { path: e.path, layer: top.ref, realPath: e.comps.length === 0 ? top.root : e.top.real, type: typeOf(e.top.st) };
  }

  /** Real path `p` would have in the upper layer (whether or not it exists there). */
  upperPathOf(p: string): string | undefined {
    if (!this.stack.upper) return undefined;
    const comps = splitRequestPath(p, 'resolve');
    return this.view.realPath(this.view.layers[0], comps);
  }

  layers(): LayerInfo[] {
    return this.view.layers.map((l) => ({ layer: l.ref, path: l.root, writable: l.ref === 'upper' }));
  }

  private lowersOnly?: LayerView;
  /** The merged view of the lower layers alone (what the upper is compared against). */
  private lowerView(): LayerView {
    if (!this.stack.upper) return this.view;
    this.lowersOnly ??= new LayerView({ ...this.stack, upper: undefined, work: undefined });
    return this.lowersOnly;
  }

  /** Changes of upper against the lower layers, as `docker diff` prints them. */
  async diff(): Promise<Change[]> {
    if (!this.stack.upper) return [];
    return diffUpper(this.view, this.lowerView());
  }

  /**
   * The lower copy of `p`: which lower layer serves it when the upper layer is left out
   * (following symlinks inside the lower view), or undefined when the lowers have none.
   */
  async lowerResolve(p: string): Promise<ResolveResult | undefined> {
    const comps = splitRequestPath(p, 'resolve');
    let e: Entry;
    try {
      e = this.lowerView().resolve(comps, true, 'resolve', p);
    } catch {
      return undefined;
    }
    if (!e.top) return undefined;
    const top = e.comps.length === 0 ? this.lowerView().layers[0] : e.top.layer;
    return { path: e.path, layer: top.ref, realPath: e.comps.length === 0 ? top.root : e.top.real, type: typeOf(e.top.st) };
  }

  /**
   * Revert `p` to what the lower layers hold: drop whatever the upper layer has at that
   * name (a copy, an added file or tree, a whiteout, an opaque directory).
   */
  revert(p: string): Promise<void> {
    return this.mutate('revert', p, () => {
      const { markers, work } = this.writer('revert', p);
      const e = this.entry(p, false, 'revert');
      if (e.comps.length === 0) throw createError('EBUSY', 'revert', p, 'cannot revert the root; revert its entries');
      const parent = this.dirEntry(e.comps.slice(0, -1), 'revert');
      if (parent.top?.layer.ref !== 'upper') return; // nothing of this name in the upper layer
      const dir = parent.top.real;
      const name = this.name(e);
      const real = dir + '/' + name;
      if (fs.lstatSync(encodePath(real), { throwIfNoEntry: false })) {
        const trash = work.tempName();
        fs.renameSync(encodePath(real), encodePath(trash));
        fs.rmSync(encodePath(trash), { recursive: true, force: true });
      }
      markers.clearWhiteout(dir, name);
    });
  }

  // ---------------------------------------------------------------- writes

  /**
   * Write a whole file: atomically (temp in work dir, renamed into place), or in place when the
   * file's inode must stay (inPlaceWrite.ts). Either way with the privileges a write leaves
   * (privileges.ts), as open(O_TRUNC) + write on a kernel mount.
   */
  writeFile(p: string, data: Uint8Array | string, opts: WriteOptions = {}): Promise<void> {
    return this.mutate('open', p, () => this.writeFileLocked(p, data, opts));
  }

  private async writeFileLocked(p: string, data: Uint8Array | string, opts: WriteOptions): Promise<void> {
    const { work } = this.writer('open', p);
    const e = this.entry(p, true, 'open');
    const create = opts.create ?? true;
    const overwrite = opts.overwrite ?? true;
    if (e.top) {
      if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
      if (!overwrite) throw createError('EEXIST', 'open', p);
      if (!e.top.st.isFile()) throw createError('EINVAL', 'open', p, 'not a regular file');
      checkAccess(e.top.st, W, 'open', p);
      const top = e.top;
      if (top.layer.ref === 'upper' && keepsInode(top.st)) {
        await writeInPlace(work, top.real, data);
        dropPrivilegesAfterWrite(top.real);
        return;
      }
      const dir = this.parentUpper(e);
      const dest = dir + '/' + this.name(e);
      const tmp = work.tempName();
      try {
        await fs.promises.writeFile(encodePath(tmp), data, { mode: 0o600 });
        copyMetadata(top.real, top.st, tmp, this.view.xattrPrefix, { times: false, afterWrite: true });
        fs.renameSync(encodePath(tmp), encodePath(dest));
      } catch (err) {
        fs.rmSync(encodePath(tmp), { force: true });
        throw err;
      }
      if (top.layer.ref !== 'upper') this.emit('copyup', { path: e.path, lowerPath: top.real, upperPath: dest, fromLayer: top.layer.ref });
      return;
    }
    if (!create) throw createError('ENOENT', 'open', p);
    await this.placeNew(e, (tmp) => fs.promises.writeFile(encodePath(tmp), data, { mode: opts.mode ?? 0o666, flag: 'wx' }));
  }

  appendFile(p: string, data: Uint8Array | string): Promise<void> {
    return this.mutate('open', p, async () => {
      const { copyUp } = this.writer('open', p);
      const e = this.entry(p, true, 'open');
      if (!e.top) return this.writeFileLocked(p, data, {});
      if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
      if (!e.top.st.isFile()) throw createError('EINVAL', 'open', p, 'not a regular file');
      checkAccess(e.top.st, W, 'open', p);
      const real = await copyUp.file(e);
      await fs.promises.appendFile(encodePath(real), data);
      if (data.length > 0) dropPrivilegesAfterWrite(real);
    });
  }

  truncate(p: string, size = 0): Promise<void> {
    return this.mutate('open', p, async () => {
      if (!Number.isSafeInteger(size) || size < 0) throw createError('EINVAL', 'open', p, 'size must be a non-negative integer');
      const { copyUp } = this.writer('open', p);
      const e = this.existing(p, true, 'open');
      if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
      if (!e.top.st.isFile()) throw createError('EINVAL', 'open', p, 'not a regular file');
      checkAccess(e.top.st, W, 'open', p);
      const real = await copyUp.file(e);
      fs.truncateSync(encodePath(real), size);
      dropPrivilegesAfterWrite(real);
    });
  }

  mkdir(p: string, opts: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    return this.mutate('mkdir', p, () => {
      this.writer('mkdir', p);
      const mode = opts.mode ?? 0o777;
      const comps = splitRequestPath(p, 'mkdir');
      if (!opts.recursive) {
        const e = this.entry(p, false, 'mkdir');
        if (e.top) throw createError('EEXIST', 'mkdir', p);
        if (e.comps.length === 0) throw createError('EEXIST', 'mkdir', p);
        this.makeDir(e, mode);
        return;
      }
      for (let i = 1; i <= comps.length; i++) {
        const sub = '/' + comps.slice(0, i).join('/');
        // Like mkdir -p: mkdir(2) never follows the name itself, so an existing symlink is EEXIST
        // unless it leads to a directory (a dangling one is never followed to create its target).
        const e = this.entry(sub, false, 'mkdir');
        if (!e.top) {
          this.makeDir(e, mode);
          continue;
        }
        let t: Entry = e;
        if (e.top.st.isSymbolicLink()) {
          try {
            t = this.entry(sub, true, 'mkdir');
          } catch (err) {
            // mkdir -p then reports what following it gave: ELOOP as is, a dangling link as EEXIST.
            const code = (err as NodeJS.ErrnoException).code ?? 'EEXIST';
            if (code === 'ELOOP' || (code === 'ENOTDIR' && i < comps.length)) throw createError(code, 'mkdir', p);
            throw createError('EEXIST', 'mkdir', p);
          }
          if (!t.top) throw createError('EEXIST', 'mkdir', p);
        }
        if (!t.top!.st.isDirectory()) throw createError(i === comps.length ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
      }
    });
  }

  unlink(p: string): Promise<void> {
    return this.mutate('unlink', p, () => {
      this.writer('unlink', p);
      const e = this.existing(p, false, 'unlink');
      if (e.comps.length === 0 || e.top.st.isDirectory()) throw createError('EISDIR', 'unlink', p);
      this.checkRemove(e, 'unlink', p);
      this.removeEntry(e);
    });
  }

  rmdir(p: string): Promise<void> {
    return this.mutate('rmdir', p, () => {
      this.writer('rmdir', p);
      const e = this.existing(p, false, 'rmdir');
      if (e.comps.length === 0) throw createError('EBUSY', 'rmdir', p);
      if (!e.top.st.isDirectory()) throw createError('ENOTDIR', 'rmdir', p);
      if (this.view.readdir(e).length > 0) throw createError('ENOTEMPTY', 'rmdir', p);
      this.checkRemove(e, 'rmdir', p);
      this.removeEntry(e);
    });
  }

  /** Remove a file, or with `recursive` a directory and everything below it. */
  rm(p: string, opts: { recursive?: boolean } = {}): Promise<void> {
    return this.mutate('rm', p, () => {
      this.writer('rm', p);
      const e = this.existing(p, false, 'rm');
      if (e.comps.length === 0) throw createError('EBUSY', 'rm', p);
      if (e.top.st.isDirectory() && !opts.recursive) throw createError('EISDIR', 'rm', p, 'is a directory (use recursive)');
      this.checkRemove(e, 'rm', p);
      // Emptying a directory removes names from it: write and search on it, if it holds any.
      if (e.top.st.isDirectory() && this.view.readdir(e).length > 0) checkAccess(e.top.st, W | X, 'rm', p);
      if (e.top.st.isDirectory() && this.reachedThroughItself(p, e)) {
        // `rm -r` empties the directory, then rmdir(p) looks p up again: through a
        // symlink that was inside and is gone now. The kernel answers ENOENT there.
        for (const c of this.view.readdir(e)) {
          const ce = this.view.resolve([...e.comps, c.name], false, 'rm', p);
          if (ce.top) this.removeEntry(ce as Entry & { top: Hit });
        }
        throw createError('ENOENT', 'rm', p);
      }
      this.removeEntry(e);
    });
  }

  /** Does the request path `p` pass through a name inside the directory it names (a symlink like d/link -> ..)? */
  private reachedThroughItself(p: string, e: Entry): boolean {
    const comps = splitRequestPath(p, 'rm');
    const inside = e.path === '/' ? '/' : e.path + '/';
    for (let i = 1; i < comps.length; i++) {
      if (this.view.resolve(comps.slice(0, i), false, 'rm', p).path.startsWith(inside)) return true;
    }
    return false;
  }

  symlink(target: string, p: string): Promise<void> {
    return this.mutate('symlink', p, async () => {
      this.writer('symlink', p);
      if (typeof target !== 'string' || target === '' || target.includes('\0')) throw createError('EINVAL', 'symlink', p, 'bad symlink target');
      const e = this.entry(p, false, 'symlink');
      if (e.top || e.comps.length === 0) throw createError('EEXIST', 'symlink', p);
      await this.placeNew(e, (tmp) => fs.symlinkSync(encodePath(target), encodePath(tmp)));
    });
  }

  chmod(p: string, mode: number): Promise<void> {
    return this.mutate('chmod', p, async () => {
      if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw createError('EINVAL', 'chmod', p, 'mode must be an integer 0..0o7777');
      const { copyUp } = this.writer('chmod', p);
      const e = this.existing(p, true, 'chmod');
      checkOwner(e.top.st, 'chmod', p);
      const real = e.top.st.isDirectory() ? copyUp.dir(e) : await copyUp.file(e);
      fs.chmodSync(encodePath(real), mode);
    });
  }

  utimes(p: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.mutate('utime', p, async () => {
      const { copyUp } = this.writer('utime', p);
      const e = this.existing(p, true, 'utime');
      checkOwner(e.top.st, 'utime', p);
      const real = e.top.st.isDirectory() ? copyUp.dir(e) : await copyUp.file(e);
      fs.utimesSync(encodePath(real), atimeMs / 1000, mtimeMs / 1000);
    });
  }

  /** Copy a file up without changing it (what chmod/rename/open-for-write do first). */
  copyUpPath(p: string): Promise<string> {
    return this.mutate('copyup', p, async () => {
      const { copyUp } = this.writer('copyup', p);
      const e = this.existing(p, false, 'copyup');
      return e.top.st.isDirectory() ? copyUp.dir(e) : copyUp.file(e);
    });
  }

  /**
   * Rename `src` to exactly `dst` (like `mv -T`); `overwrite: false` refuses an existing dst.
   * `copyBelow`: where the kernel answers EXDEV, copy what is below instead of moving it entry by
   * entry — what `mv SRC DST` without -T does when DST does not exist (coreutils 9.1).
   */
  rename(src: string, dst: string, opts: { overwrite?: boolean; copyBelow?: boolean } = {}): Promise<void> {
    return this.mutate('rename', src, async () => {
      this.writer('rename', src);
      const s = this.existing(src, false, 'rename');
      const d = this.entry(dst, false, 'rename');
      if (s.comps.length === 0 || d.comps.length === 0) throw createError('EBUSY', 'rename', src, undefined, dst);
      if (d.path === s.path) return;
      // In the kernel's order: RENAME_NOREPLACE's EEXIST, then the source above the target
      // (EINVAL), then the target above the source (ENOTEMPTY: it holds the source), then permissions.
      if (d.top && opts.overwrite === false) throw createError('EEXIST', 'rename', src, undefined, dst);
      if (d.path.startsWith(s.path + '/')) throw createError('EINVAL', 'rename', src, undefined, dst);
      if (s.path.startsWith(d.path + '/')) throw createError('ENOTEMPTY', 'rename', src, undefined, dst);
      const sDir = s.top.st.isDirectory();
      this.checkRemove(s, 'rename', src);
      if (d.top) this.checkRemove(d as Entry & { top: Hit }, 'rename', dst);
      else this.checkCreate(d, 'rename', dst);
      // A directory moved to another parent has its '..' rewritten: write on it.
      if (sDir && s.parent[0]?.real !== d.parent[0]?.real) checkAccess(s.top.st, W, 'rename', src);
      if (d.top) {
        const dDir = d.top.st.isDirectory();
        if (sDir && !dDir) throw createError('ENOTDIR', 'rename', src, undefined, dst);
        if (!sDir && dDir) throw createError('EISDIR', 'rename', src, undefined, dst);
        if (dDir && this.view.readdir(d).length > 0) throw createError('ENOTEMPTY', 'rename', src, undefined, dst);
      }
      await this.moveEntry(s, d, dst, false, opts.copyBelow ?? false);
    });
  }

  /**
   * Move an existing `s` to the absent-or-replaceable `d` (already validated). Files and pure-upper
   * directories are renamed in upper. A directory with lower parts gets EXDEV from the kernel, and
   * mv then does what this does: mkdir the target, move each entry into it the same way (so entries
   * the kernel can rename keep everything, e.g. an opaque pure-upper subdirectory), copy the
   * directory's metadata and remove the source. With `copyBelow` the entries are copied instead
   * (`copying`: a directory is made anew even where the kernel could rename it, so an opaque
   * pure-upper subdirectory loses its marker, as a copy through the mount does).
   */
  private async moveEntry(s: Entry & { top: Hit }, d: Entry, dstRequest?: string, copying = false, copyBelow = false): Promise<void> {
    const { copyUp, markers } = this.writer('rename', s.path);
    const sDir = s.top.st.isDirectory();
    const sName = this.name(s);
    const dName = this.name(d);
    const srcLowerPositive = this.view.lowerPositive(s);
    if (!sDir) {
      const srcUpper = await copyUp.file(s);
      const dDir = this.parentUpper(d);
      fs.renameSync(encodePath(srcUpper), encodePath(dDir + '/' + dName));
      if (this.view.format === 'oci') markers.clearWhiteout(dDir, dName);
      if (srcLowerPositive) markers.whiteout(this.parentUpper(s), sName);
      return;
    }
    const pureUpper = s.top.layer.ref === 'upper' && s.merge.length === 1 && !copying;
    if (pureUpper) {
      const dParent = this.dirEntry(d.comps.slice(0, -1), 'rename');
      const dDir = copyUp.dir(dParent);
      const dest = dDir + '/' + dName;
      if (d.top?.layer.ref === 'upper') {
        markers.clearInside(d.top.real);
        fs.rmdirSync(encodePath(d.top.real));
      }
      markers.clearWhiteout(dDir, dName);
      const wasOpaque = this.view.opaqueValue(s.top.real) === 'y';
      fs.renameSync(encodePath(s.top.real), encodePath(dest));
      // The kernel makes a pure-upper directory opaque when it moves into a merged parent.
      if (!wasOpaque && dParent.merge.some((h) => h.layer.ref !== 'upper')) markers.setOpaque(dest);
      if (srcLowerPositive) markers.whiteout(this.parentUpper(s), sName);
      return;
    }
    // A directory with lower parts: the kernel answers EXDEV and mv moves entry by entry.
    if (d.top) this.removeEntry(d as Entry & { top: Hit });
    const target = this.entry(d.path, false, 'rename');
    const real = this.makeDir(target, 0o700);
    for (const child of this.view.readdir(s)) {
      const cs = this.view.resolve([...s.comps, child.name], false, 'rename', s.path) as Entry & { top: Hit };
      // mv names each entry by the destination path it was given, looked up again: a
      // symlink on that path which this move has taken away (it was inside the source)
      // ends the move there with ENOENT, as on a kernel mount.
      const cdRequest = dstRequest === undefined ? undefined : dstRequest + '/' + child.name;
      const cd =
        cdRequest === undefined
          ? this.view.resolve([...target.comps, child.name], false, 'rename', target.path)
          : this.view.resolve(splitRequestPath(cdRequest, 'rename'), false, 'rename', cdRequest);
      await this.moveEntry(cs, cd, cdRequest, copyBelow, copyBelow);
    }
    copyMetadata(s.top.real, s.top.st, real, this.view.xattrPrefix);
    this.removeEntry(this.existing(s.path, false, 'rename'));
  }

  /** Copy `src` (file, directory or symlink — a symlink stays a symlink) to `dst` as VS Code's copy does. */
  copy(src: string, dst: string, opts: { overwrite?: boolean } = {}): Promise<void> {
    return this.mutate('copyfile', src, async () => {
      this.writer('copyfile', dst);
      const s = this.existing(src, false, 'copyfile');
      let d = this.entry(dst, false, 'copyfile');
      if (d.comps.length === 0) throw createError('EBUSY', 'copyfile', src, undefined, dst);
      // Into itself or its own subtree (the root contains everything): cp refuses, else it recurses until ENAMETOOLONG.
      if (s.comps.length === 0 || d.path === s.path || d.path.startsWith(s.path + '/'))
        throw createError('EINVAL', 'copyfile', src, 'cannot copy a directory into itself', dst);
      if (d.top) {
        if (opts.overwrite === false) throw createError('EEXIST', 'copyfile', src, undefined, dst);
        this.checkRemove(d as Entry & { top: Hit }, 'copyfile', dst);
        this.removeEntry(d as Entry & { top: Hit });
        d = this.entry(dst, false, 'copyfile');
      }
      await this.copyTree(s, d);
    });
  }

  /** Create `dst` (absent) as a copy of `src` with data, mode, owner, xattrs and times (as cp -a / mv do). */
  private async copyTree(s: Entry & { top?: Hit }, d: Entry): Promise<void> {
    const top = s.top as Hit;
    const prefix = this.view.xattrPrefix;
    if (top.st.isDirectory()) {
      const real = this.makeDir(d, 0o700);
      for (const child of this.view.readdir(s)) {
        const cs = this.view.resolve([...s.comps, child.name], false, 'copy', s.path);
        const cd = this.view.resolve([...d.comps, child.name], false, 'copy', d.path);
        await this.copyTree(cs, cd);
      }
      copyMetadata(top.real, top.st, real, prefix);
      return;
    }
    await this.placeNew(d, async (tmp) => {
      if (top.st.isFile()) await fs.promises.copyFile(encodePath(top.real), encodePath(tmp), fs.constants.COPYFILE_FICLONE);
      else if (top.st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(encodePath(top.real), { encoding: 'buffer' }), encodePath(tmp));
      else throw createError('ENOTSUP', 'copy', s.path, 'cannot copy a device, FIFO or socket');
      copyMetadata(top.real, top.st, tmp, prefix);
    });
  }

  // ---------------------------------------------------------------- handles

  /**
   * Open a handle. A read handle opened while the file is in a lower layer reads the
   * upper copy once the file has been copied up (the kernel's rule since 4.19).
   */
  async open(p: string, flags: OpenFlags = {}): Promise<number> {
    if (flags.write || flags.create || flags.truncate) {
      await this.mutate('open', p, async () => {
        const { copyUp } = this.writer('open', p);
        const e = this.entry(p, true, 'open');
        if (!e.top) {
          if (!flags.create) throw createError('ENOENT', 'open', p);
          await this.placeNew(e, (tmp) => fs.promises.writeFile(encodePath(tmp), '', { mode: 0o666, flag: 'wx' }));
          return;
        }
        if (flags.exclusive) throw createError('EEXIST', 'open', p);
        if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
        checkAccess(e.top.st, W, 'open', p);
        const real = await copyUp.file(e);
        if (flags.truncate) {
          fs.truncateSync(encodePath(real), 0);
          dropPrivilegesAfterWrite(real);
        }
      });
    }
    const e = this.existing(p, true, 'open');
    if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
    if (!e.top.st.isFile()) throw createError('EINVAL', 'open', p, 'not a regular file');
    return this.handles.open(e.path, e.top.real, e.top.st.ino, flags.write === true);
  }

  /** Current real file of a handle's path, reopened when the file was copied up or replaced. */
  private async currentFd(h: number, syscall: string): Promise<fs.promises.FileHandle> {
    const info = this.handles.get(h, syscall);
    let e: Entry | undefined;
    try {
      e = this.view.resolve(splitRequestPath(info.path, syscall), true, syscall, info.path);
    } catch {
      e = undefined;
    }
    if (e?.top && e.top.st.isFile() && (e.top.real !== info.real || e.top.st.ino !== info.ino)) {
      await this.handles.reopen(h, e.top.real, e.top.st.ino);
    }
    return this.handles.fd(h);
  }

  async readHandle(h: number, position: number, length: number): Promise<Buffer> {
    const fh = await this.currentFd(h, 'read');
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }

  async writeHandle(h: number, position: number, data: Uint8Array): Promise<number> {
    const info = this.handles.get(h, 'write');
    if (!info.write) throw createError('EBADF', 'write', info.path, 'handle not open for writing');
    return this.mutate('write', info.path, async () => {
      const e = this.existing(info.path, true, 'write');
      const real = await this.writer('write', info.path).copyUp.file(e);
      const ino = fs.statSync(encodePath(real)).ino;
      if (real !== info.real || ino !== info.ino) await this.handles.reopen(h, real, ino);
      const fh = await this.handles.fd(h);
      const { bytesWritten } = await fh.write(data, 0, data.length, position);
      if (bytesWritten > 0) dropPrivilegesAfterWrite(real);
      return bytesWritten;
    });
  }

  async closeHandle(h: number): Promise<void> {
    await this.handles.close(h);
  }

  async close(): Promise<void> {
    await this.lock;
    await this.handles.closeAll();
    this.removeAllListeners();
  }
}
