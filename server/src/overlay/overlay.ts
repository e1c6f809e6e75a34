/**
 * The overlay engine: one stack of layers answered and changed exactly as Linux overlayfs
 * would. Paths are absolute from the overlay root; errors are Node-style. Reads are in
 * reader.ts; the upper layer's primitive changes in upper.ts, moves and copies of trees in
 * treeMove.ts; each operation here is its checks, in the kernel's order, and a few calls.
 */
import * as fs from 'node:fs';
import { CopyUp } from './copyUp';
import { asOverlayError, createError } from './errors';
import { Handles, type OpenFlags } from './handles';
import { keepsInode, writeInPlace } from './inPlaceWrite';
import type { Entry, Found } from './lookup';
import { encodePath } from './names';
import { splitRequestPath } from './paths';
import { W, X, checkAccess, checkOwner } from './permission';
import { dropPrivilegesAfterWrite } from './privileges';
import { OverlayReader } from './reader';
import { resolveStack, type ResolvedStack } from './stack';
import { copyTree, renameTree, restoreLowerCopy } from './treeMove';
import type { StackSpec, WriteOptions } from './types';
import { checkRemoveFrom, Upper } from './upper';
import { WorkDir } from './workdir';

export type { OverlayEvents } from './reader';

export class Overlay extends OverlayReader {
  private readonly up?: Upper;
  private readonly handles = new Handles();
  private lock: Promise<unknown> = Promise.resolve();

  /** Validate the stack and open it. Throws a Node-style error naming the problem. */
  static async open(spec: StackSpec): Promise<Overlay> {
    return new Overlay(resolveStack(spec));
  }

  constructor(stack: ResolvedStack) {
    super(stack);
    if (stack.upper && stack.work) {
      const work = new WorkDir(stack.work);
      work.cleanStale();
      const dirEntry = (comps: string[], syscall: string): Found => this.dirEntry(comps, syscall);
      const copyUp = new CopyUp(
        this.view,
        work,
        (c) => dirEntry(c, 'copyup'),
        (e) => this.emit('copyup', e),
      );
      this.up = new Upper(this.view, work, copyUp, (p, follow, syscall) => this.entry(p, follow, syscall), dirEntry);
    }
  }

  get readOnly(): boolean {
    return this.up === undefined;
  }

  // ---------------------------------------------------------------- internals

  /** The upper layer to change, EROFS without one. */
  private upper(syscall: string, p: string): Upper {
    if (!this.up) throw createError('EROFS', syscall, p, 'read-only file system (the overlay has no upper layer)');
    return this.up;
  }

  /** Mutations run one at a time; reads never wait. `written`: the path an EROFS names. */
  private mutate<T>(syscall: string, p: string, fn: (up: Upper) => Promise<T> | T, written = p): Promise<T> {
    const run = this.lock.then(async () => {
      try {
        return await fn(this.upper(syscall, written));
      } catch (err) {
        throw asOverlayError(err, syscall, p);
      }
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** An existing regular file the caller may write. */
  private writableFile(e: Found, syscall: string, p: string): Found {
    checkAccess(this.asFile(e, syscall, p).top.st, W, syscall, p);
    return e;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Write a whole file: atomically (temp in work dir, renamed into place), or in place when the
   * file's inode must stay (inPlaceWrite.ts). Either way with the privileges a write leaves
   * (privileges.ts), as open(O_TRUNC) + write on a kernel mount.
   */
  writeFile(p: string, data: Uint8Array | string, opts: WriteOptions = {}): Promise<void> {
    return this.mutate('open', p, (up) => this.writeFileLocked(up, p, data, opts));
  }

  private async writeFileLocked(up: Upper, p: string, data: Uint8Array | string, opts: WriteOptions): Promise<void> {
    const e = this.entry(p, true, 'open');
    if (!e.top) {
      if (!(opts.create ?? true)) throw createError('ENOENT', 'open', p);
      await up.placeNew(e, (tmp) => fs.promises.writeFile(encodePath(tmp), data, { mode: opts.mode ?? 0o666, flag: 'wx' }));
      return;
    }
    if (e.top.st.isDirectory()) throw createError('EISDIR', 'open', p);
    if (!(opts.overwrite ?? true)) throw createError('EEXIST', 'open', p);
    const { top } = this.writableFile(e, 'open', p);
    if (top.layer.ref === 'upper' && keepsInode(top.st)) {
      await writeInPlace(up.work, top.real, data);
      dropPrivilegesAfterWrite(top.real);
      return;
    }
    const dest = await up.replaceFile(e, data);
    if (top.layer.ref !== 'upper') this.emit('copyup', { path: e.path, lowerPath: top.real, upperPath: dest, fromLayer: top.layer.ref });
  }

  appendFile(p: string, data: Uint8Array | string): Promise<void> {
    return this.mutate('open', p, async (up) => {
      const e = this.entry(p, true, 'open');
      if (!e.top) return this.writeFileLocked(up, p, data, {});
      const real = await up.copyUp.file(this.writableFile(e, 'open', p));
      await fs.promises.appendFile(encodePath(real), data);
      if (data.length > 0) dropPrivilegesAfterWrite(real);
    });
  }

  truncate(p: string, size = 0): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) return Promise.reject(createError('EINVAL', 'open', p, 'size must be a non-negative integer'));
    return this.mutate('open', p, async (up) => {
      const real = await up.copyUp.file(this.writableFile(this.existing(p, true, 'open'), 'open', p));
      fs.truncateSync(encodePath(real), size);
      dropPrivilegesAfterWrite(real);
    });
  }

  mkdir(p: string, opts: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    return this.mutate('mkdir', p, (up) => {
      const mode = opts.mode ?? 0o777;
      if (!opts.recursive) {
        const e = this.entry(p, false, 'mkdir');
        if (e.top || e.comps.length === 0) throw createError('EEXIST', 'mkdir', p);
        up.makeDir(e, mode);
        return;
      }
      const comps = splitRequestPath(p, 'mkdir');
      for (let i = 1; i <= comps.length; i++) {
        const sub = '/' + comps.slice(0, i).join('/');
        // Like mkdir -p: mkdir(2) never follows the name itself, so an existing symlink is EEXIST
        // unless it leads to a directory (a dangling one is never followed to create its target).
        const e = this.entry(sub, false, 'mkdir');
        if (!e.top) {
          up.makeDir(e, mode);
          continue;
        }
        const t = e.top.st.isSymbolicLink() ? this.followedForMkdir(sub, p, i < comps.length) : e;
        if (!t.top.st.isDirectory()) throw createError(i === comps.length ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
      }
    });
  }

  /** An existing symlink on mkdir -p's way, followed: mkdir -p reports what following it gave (ELOOP as is, a dangling link as EEXIST). */
  private followedForMkdir(sub: string, p: string, more: boolean): Found {
    let t: Entry;
    try {
      t = this.entry(sub, true, 'mkdir');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EEXIST';
      if (code === 'ELOOP' || (code === 'ENOTDIR' && more)) throw createError(code, 'mkdir', p);
      throw createError('EEXIST', 'mkdir', p);
    }
    if (!t.top) throw createError('EEXIST', 'mkdir', p);
    return t;
  }

  unlink(p: string): Promise<void> {
    return this.mutate('unlink', p, (up) => {
      const e = this.existing(p, false, 'unlink');
      if (e.comps.length === 0 || e.top.st.isDirectory()) throw createError('EISDIR', 'unlink', p);
      checkRemoveFrom(e, 'unlink', p);
      up.remove(e);
    });
  }

  rmdir(p: string): Promise<void> {
    return this.mutate('rmdir', p, (up) => {
      const e = this.existing(p, false, 'rmdir');
      if (e.comps.length === 0) throw createError('EBUSY', 'rmdir', p);
      if (!e.top.st.isDirectory()) throw createError('ENOTDIR', 'rmdir', p);
      if (this.view.readdir(e).length > 0) throw createError('ENOTEMPTY', 'rmdir', p);
      checkRemoveFrom(e, 'rmdir', p);
      up.remove(e);
    });
  }

  /** Remove a file, or with `recursive` a directory and everything below it. */
  rm(p: string, opts: { recursive?: boolean } = {}): Promise<void> {
    return this.mutate('rm', p, (up) => {
      const e = this.existing(p, false, 'rm');
      if (e.comps.length === 0) throw createError('EBUSY', 'rm', p);
      const isDir = e.top.st.isDirectory();
      if (isDir && !opts.recursive) throw createError('EISDIR', 'rm', p, 'is a directory (use recursive)');
      checkRemoveFrom(e, 'rm', p);
      // Emptying a directory removes names from it: write and search on it, if it holds any.
      if (isDir && this.view.readdir(e).length > 0) checkAccess(e.top.st, W | X, 'rm', p);
      if (isDir && this.reachedThroughItself(p, e)) {
        // `rm -r` empties the directory, then rmdir(p) looks p up again: through a
        // symlink that was inside and is gone now. The kernel answers ENOENT there.
        for (const c of this.view.readdir(e)) {
          const ce = this.view.resolve([...e.comps, c.name], false, 'rm', p);
          if (ce.top) up.remove(ce);
        }
        throw createError('ENOENT', 'rm', p);
      }
      up.remove(e);
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
    return this.mutate('symlink', p, async (up) => {
      if (typeof target !== 'string' || target === '' || target.includes('\0')) throw createError('EINVAL', 'symlink', p, 'bad symlink target');
      const e = this.entry(p, false, 'symlink');
      if (e.top || e.comps.length === 0) throw createError('EEXIST', 'symlink', p);
      await up.placeNew(e, (tmp) => fs.symlinkSync(encodePath(target), encodePath(tmp)));
    });
  }

  chmod(p: string, mode: number): Promise<void> {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) return Promise.reject(createError('EINVAL', 'chmod', p, 'mode must be an integer 0..0o7777'));
    return this.mutate('chmod', p, async (up) => {
      const e = this.existing(p, true, 'chmod');
      checkOwner(e.top.st, 'chmod', p);
      fs.chmodSync(encodePath(await this.copiedUp(up, e)), mode);
    });
  }

  utimes(p: string, atimeMs: number, mtimeMs: number): Promise<void> {
    return this.mutate('utime', p, async (up) => {
      const e = this.existing(p, true, 'utime');
      checkOwner(e.top.st, 'utime', p);
      fs.utimesSync(encodePath(await this.copiedUp(up, e)), atimeMs / 1000, mtimeMs / 1000);
    });
  }

  /** Copy a file up without changing it (what chmod/rename/open-for-write do first). */
  copyUpPath(p: string): Promise<string> {
    return this.mutate('copyup', p, (up) => this.copiedUp(up, this.existing(p, false, 'copyup')));
  }

  /** `e` in the upper layer (a directory without what is inside), copied up if it is not there. */
  private async copiedUp(up: Upper, e: Found): Promise<string> {
    return e.top.st.isDirectory() ? up.copyUp.dir(e) : up.copyUp.file(e);
  }

  /**
   * Rename `src` to exactly `dst` (like `mv -T`); `overwrite: false` refuses an existing dst.
   * `copyBelow`: see treeMove.ts renameTree.
   */
  rename(src: string, dst: string, opts: { overwrite?: boolean; copyBelow?: boolean } = {}): Promise<void> {
    return this.mutate('rename', src, (up) => renameTree(up, this.existing(src, false, 'rename'), this.entry(dst, false, 'rename'), src, dst, opts));
  }

  /** Copy `src` (file, directory or symlink — a symlink stays a symlink) to `dst` as VS Code's copy does. */
  copy(src: string, dst: string, opts: { overwrite?: boolean } = {}): Promise<void> {
    return this.mutate('copyfile', src, (up) => copyTree(up, this.existing(src, false, 'copyfile'), this.entry(dst, false, 'copyfile'), src, dst, opts), dst);
  }

  /**
   * Revert `p` to what the lower layers hold: drop whatever the upper layer has at that
   * name (a copy, an added file or tree, a whiteout, an opaque directory). An entry that an
   * opaque directory above still hides (it was not deleted on its own, its directory was
   * replaced as a whole) comes back as a copy of the lower version in the upper layer; the
   * directory stays opaque and keeps hiding the rest.
   */
  revert(p: string): Promise<void> {
    return this.mutate('revert', p, async (up) => {
      const e = this.entry(p, false, 'revert');
      if (e.comps.length === 0) throw createError('EBUSY', 'revert', p, 'cannot revert the root; revert its entries');
      const parent = this.dirEntry(e.comps.slice(0, -1), 'revert');
      if (parent.top.layer.ref !== 'upper') return; // nothing of this name in the upper layer
      up.drop(parent.top.real, e.comps[e.comps.length - 1]);
      const now = this.entry(p, false, 'revert');
      if (now.top) return;
      const lower = this.lowerView().resolve(now.comps, false, 'revert', p);
      if (lower.top) await restoreLowerCopy(up, this.lowerView(), lower, now);
    });
  }

  // ---------------------------------------------------------------- handles

  /**
   * Open a handle. A read handle opened while the file is in a lower layer reads the
   * upper copy once the file has been copied up (the kernel's rule since 4.19).
   */
  async open(p: string, flags: OpenFlags = {}): Promise<number> {
    if (flags.write || flags.create || flags.truncate) {
      await this.mutate('open', p, async (up) => {
        const e = this.entry(p, true, 'open');
        if (!e.top) {
          if (!flags.create) throw createError('ENOENT', 'open', p);
          await up.placeNew(e, (tmp) => fs.promises.writeFile(encodePath(tmp), '', { mode: 0o666, flag: 'wx' }));
          return;
        }
        if (flags.exclusive) throw createError('EEXIST', 'open', p);
        const real = await up.copyUp.file(this.writableFile(e, 'open', p));
        if (flags.truncate) {
          fs.truncateSync(encodePath(real), 0);
          dropPrivilegesAfterWrite(real);
        }
      });
    }
    const e = this.lookupAsFile(p, true, 'open');
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
    return this.mutate('write', info.path, async (up) => {
      const real = await up.copyUp.file(this.existing(info.path, true, 'write'));
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
