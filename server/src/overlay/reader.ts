/**
 * The reading half of an overlay: lookups that throw the right Node error and return a
 * narrowed entry (the fsprovider sample's _lookupAsFile / _lookupAsDirectory), and every read:
 * stat, listings, file data, links, which layer serves a path, the changes against the lowers.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { diffUpper } from './diff';
import { fileHistory, type HistoryEntry } from './history';
import { asOverlayError, createError } from './errors';
import { LayerView, type Entry, type Found, type Hit } from './lookup';
import { typeOf } from './lstat';
import { encodePath, readlinkName } from './names';
import { splitRequestPath } from './paths';
import type { ResolvedStack } from './stack';
import type { Change, CopyUpEvent, DirEntry, LayerInfo, OverlayStat, ResolveResult } from './types';

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

/** Which layer serves `e` (the root: the top layer) and its real path. */
function resolved(view: LayerView, e: Found): ResolveResult {
  const top = e.comps.length === 0 ? view.layers[0] : e.top.layer;
  return { path: e.path, layer: top.ref, realPath: e.comps.length === 0 ? top.root : e.top.real, type: typeOf(e.top.st) };
}

export class OverlayReader extends EventEmitter<OverlayEvents> {
  readonly view: LayerView;
  private lowersOnly?: LayerView;

  constructor(readonly stack: ResolvedStack) {
    super();
    this.view = new LayerView(stack);
  }

  /**
   * Something changed in a lower layer on disk (the watcher saw it): forget cached
   * lower-layer lookups. Upper-layer state is never cached.
   */
  invalidateLowers(): void {
    this.view.invalidateLowers();
    this.lowersOnly?.invalidateLowers();
  }

  // ---------------------------------------------------------------- typed lookups

  /** Look a request path up; the entry may not exist. */
  protected entry(p: string, follow: boolean, syscall: string): Entry {
    const comps = splitRequestPath(p, syscall);
    try {
      return this.view.resolve(comps, follow, syscall, p);
    } catch (err) {
      throw asOverlayError(err, syscall, p);
    }
  }

  /** An entry that exists, else ENOENT. */
  protected existing(p: string, follow: boolean, syscall: string): Found {
    return this.found(this.entry(p, follow, syscall), syscall, p);
  }

  protected found(e: Entry, syscall: string, p = e.path): Found {
    if (!e.top) throw createError('ENOENT', syscall, p);
    return e;
  }

  /** An existing regular file: EISDIR for a directory, EINVAL for anything else that is not a file. */
  protected lookupAsFile(p: string, follow: boolean, syscall: string): Found {
    return this.asFile(this.existing(p, follow, syscall), syscall, p);
  }

  protected asFile(e: Found, syscall: string, p: string, detail = 'not a regular file'): Found {
    if (e.top.st.isDirectory()) throw createError('EISDIR', syscall, p);
    if (!e.top.st.isFile()) throw createError('EINVAL', syscall, p, detail);
    return e;
  }

  /** An existing directory, else ENOENT or ENOTDIR. */
  protected lookupAsDirectory(p: string, follow: boolean, syscall: string): Found {
    const e = this.existing(p, follow, syscall);
    if (!e.top.st.isDirectory()) throw createError('ENOTDIR', syscall, p);
    return e;
  }

  /** An existing directory by canonical components (parents of entries already resolved). */
  protected dirEntry(comps: string[], syscall: string): Found {
    const e = this.view.resolve(comps, false, syscall, '/' + comps.join('/'));
    if (!e.top) throw createError('ENOENT', syscall, e.path);
    if (!e.top.st.isDirectory()) throw createError('ENOTDIR', syscall, e.path);
    return e;
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
    return toStat(e.comps.length === 0 ? this.view.rootEntry().top : e.top);
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
    let root = this.lookupAsDirectory(p, true, 'scandir');
    if (this.view.lowersChanged(root)) {
      // A lower directory changed where no watcher saw it: nothing cached from the lowers holds.
      this.invalidateLowers();
      root = this.lookupAsDirectory(p, true, 'scandir');
    }
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
        let e = this.view.child(dirs[i], d.name);
        if (!e.top?.st.isDirectory()) continue; // changed since it was listed
        if (this.view.lowersChanged(e)) {
          this.invalidateLowers();
          e = this.view.child(dirs[i], d.name);
          if (!e.top?.st.isDirectory()) continue;
        }
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
  async openRealForRead(p: string, syscall: string): Promise<{ fh: fs.promises.FileHandle; entry: Found }> {
    const e = this.asFile(this.existing(p, true, syscall), syscall, p, 'not a regular file (devices, FIFOs and sockets are never opened)');
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
    return resolved(this.view, this.existing(p, false, 'resolve'));
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

  /** The merged view of the lower layers alone (what the upper is compared against). */
  protected lowerView(): LayerView {
    if (!this.stack.upper) return this.view;
    this.lowersOnly ??= new LayerView({ ...this.stack, upper: undefined, work: undefined });
    return this.lowersOnly;
  }

  /** Changes of upper against the lower layers, as `docker diff` prints them. */
  async diff(): Promise<Change[]> {
    if (!this.stack.upper) return [];
    return diffUpper(this.view, this.lowerView());
  }

  /** What each layer, on its own, has at `p`, upper first (history.ts). */
  history(p: string): Promise<HistoryEntry[]> {
    return fileHistory(this.view, p);
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
    return e.top ? resolved(this.lowerView(), e) : undefined;
  }
}
