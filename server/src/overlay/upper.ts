/**
 * The upper layer's primitive changes, each as the kernel makes it: a new non-directory made
 * in the work directory and renamed into place, a new directory (opaque over a whiteout), an
 * entry removed (a whiteout when a lower layer has the name), with the permission checks of
 * the merged parent. The whiteout format does the marking (formats/).
 */
import * as fs from 'node:fs';
import { copyMetadata, type CopyUp } from './copyUp';
import type { Format } from './formats';
import { createError } from './errors';
import type { Entry, Found, LayerView } from './lookup';
import { encodePath } from './names';
import { W, X, checkAccess, checkRemove } from './permission';
import type { WorkDir } from './workdir';

/** The last component of an entry's path. */
export function nameOf(e: Entry): string {
  return e.comps[e.comps.length - 1];
}

/** May the caller create a name in e's parent directory (write and search on it)? */
export function checkCreateIn(e: Entry, syscall: string, p: string): void {
  const dir = e.parent[0]?.st;
  if (dir) checkAccess(dir, W | X, syscall, p);
}

/** May the caller remove or replace e (an existing name) in its parent directory? */
export function checkRemoveFrom(e: Found, syscall: string, p: string): void {
  const dir = e.parent[0]?.st;
  if (dir) checkRemove(dir, e.top.st, syscall, p);
}

export class Upper {
  readonly format: Format;
  readonly scratch: () => string;

  constructor(
    readonly view: LayerView,
    readonly work: WorkDir,
    readonly copyUp: CopyUp,
    /** A request path looked up (the entry may not exist). */
    readonly entry: (p: string, follow: boolean, syscall: string) => Entry,
    /** An existing directory by canonical components (ENOENT/ENOTDIR otherwise). */
    readonly dirEntry: (comps: string[], syscall: string) => Found,
  ) {
    this.format = view.format;
    this.scratch = () => work.tempName();
  }

  /** `e` if it exists, else ENOENT (an entry listed a moment ago may be gone). */
  found(e: Entry, syscall: string): Found {
    if (!e.top) throw createError('ENOENT', syscall, e.path);
    return e;
  }

  /** The upper directory that holds (or will hold) `e`, copied up with its parents if needed. */
  parentDir(e: Entry): string {
    return this.copyUp.dir(this.dirEntry(e.comps.slice(0, -1), 'write'));
  }

  /** Install a new non-directory made by `make(tmp)` at `e` (which does not exist), over a whiteout if any. */
  async placeNew(e: Entry, make: (tmp: string) => Promise<void> | void): Promise<string> {
    checkCreateIn(e, 'open', e.path);
    const dir = this.parentDir(e);
    const tmp = this.work.tempName();
    try {
      await make(tmp);
      this.format.renameOver(tmp, dir, nameOf(e));
    } catch (err) {
      fs.rmSync(encodePath(tmp), { force: true, recursive: true });
      throw err;
    }
    return dir + '/' + nameOf(e);
  }

  /**
   * Replace the file `e` by a new one holding `data`, made in the work directory with e's owner,
   * xattrs and mode (as a data write leaves them: privileges.ts) and renamed over it. Returns its path.
   */
  async replaceFile(e: Found, data: Uint8Array | string): Promise<string> {
    const dest = this.parentDir(e) + '/' + nameOf(e);
    const tmp = this.work.tempName();
    try {
      await fs.promises.writeFile(encodePath(tmp), data, { mode: 0o600 });
      copyMetadata(e.top.real, e.top.st, tmp, { times: false, afterWrite: true });
      fs.renameSync(encodePath(tmp), encodePath(dest));
    } catch (err) {
      fs.rmSync(encodePath(tmp), { force: true });
      throw err;
    }
    return dest;
  }

  /** Make directory `e` (which does not exist); over a whiteout it is opaque: it must not merge with what was deleted. */
  makeDir(e: Entry, mode: number): string {
    checkCreateIn(e, 'mkdir', e.path);
    const dir = this.parentDir(e);
    const name = nameOf(e);
    if (this.format.hasWhiteout(dir, name)) this.format.mkdirOverWhiteout(dir, name, mode, this.scratch);
    else fs.mkdirSync(encodePath(dir + '/' + name), { mode });
    return dir + '/' + name;
  }

  /** Remove `e` (any type, a directory with everything below) from the merged view. */
  remove(e: Found): void {
    const lowerPos = this.view.lowerPositive(e);
    const top = e.top;
    const name = nameOf(e);
    if (top.layer.ref !== 'upper') {
      this.format.whiteout(this.parentDir(e), name, this.scratch);
      return;
    }
    const dir = top.real.slice(0, top.real.length - name.length - 1);
    if (!top.st.isDirectory()) {
      if (lowerPos) this.format.whiteout(dir, name, this.scratch);
      else fs.unlinkSync(encodePath(top.real));
      return;
    }
    const trash = this.work.tempName();
    fs.renameSync(encodePath(top.real), encodePath(trash));
    if (lowerPos) this.format.whiteout(dir, name, this.scratch);
    fs.rmSync(encodePath(trash), { recursive: true, force: true });
  }

  /** Drop whatever the upper layer has at name `name` of upper directory `dir` (a copy, a tree, a whiteout). */
  drop(dir: string, name: string): void {
    const real = dir + '/' + name;
    if (fs.lstatSync(encodePath(real), { throwIfNoEntry: false })) {
      const trash = this.work.tempName();
      fs.renameSync(encodePath(real), encodePath(trash));
      fs.rmSync(encodePath(trash), { recursive: true, force: true });
    }
    this.format.clearWhiteout(dir, name);
  }
}
