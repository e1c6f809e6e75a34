/**
 * Lookup and merged readdir, exactly as overlayfs does them: top-down through the
 * layers, the first hit decides; directories merge with same-named directories
 * below until an opaque one; a whiteout or a non-directory ends the descent.
 * What a whiteout or an opaque directory looks like on disk is the stack's format's
 * business (formats/). Metadata calls are synchronous on purpose: they are short and many.
 */
import { createError } from './errors';
import type { Format } from './formats';
import { layerLstat, lstatOrUndefined, typeOf, type LayerStat } from './lstat';
import { fromPlainPath, readdirEntries, readlinkName } from './names';
import type { ResolvedStack } from './stack';
import { lookupTuning } from './tuning';
import type { DirEntry, EntryType, LayerRef } from './types';

export { lookupTuning };

export interface Layer {
  ref: LayerRef;
  root: string;
}

/** Where a layer sits in the stack, top first: the upper is -1, lower i is i (the only ordering of LayerRefs). */
export function layerDepth(ref: LayerRef): number {
  return ref === 'upper' ? -1 : ref;
}

/** The higher (nearer the top) of two layers. */
export function higherLayer(a: LayerRef, b: LayerRef): LayerRef {
  return layerDepth(a) <= layerDepth(b) ? a : b;
}

/** One layer's copy of a name. */
export interface Hit {
  layer: Layer;
  real: string;
  st: LayerStat;
}

interface EntryBase {
  /** Canonical overlay path (symlinks resolved as requested). */
  path: string;
  comps: string[];
  /** Directories that merge to form the parent (top first). Empty for the root. */
  parent: Hit[];
  /** When top is a directory: the directories that merge into it, top first. */
  merge: Hit[];
}

/** A looked-up overlay path that exists: `top` is the entry as seen. */
export interface Found extends EntryBase {
  top: Hit;
}

/** A looked-up overlay path that does not exist (yet): its parent is known. */
export interface Missing extends EntryBase {
  top?: undefined;
}

/** A looked-up overlay path; `if (e.top)` tells Found from Missing. */
export type Entry = Found | Missing;

export const MAX_SYMLINKS = 40;

/** The same directories, unchanged: real path, inode, mtime and ctime of each. */
function sameDirs(a: readonly Hit[], b: readonly Hit[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.real !== y.real || x.st.ino !== y.st.ino || x.st.mtimeMs !== y.st.mtimeMs || x.st.ctimeMs !== y.st.ctimeMs) return false;
  }
  return true;
}

export class LayerView {
  readonly layers: Layer[];
  readonly upper?: Layer;
  /** The stack's whiteout format. */
  readonly format: Format;

  constructor(readonly stack: ResolvedStack) {
    this.upper = stack.upper ? { ref: 'upper', root: fromPlainPath(stack.upper) } : undefined;
    const lowers = stack.lower.map((root, i): Layer => ({ ref: i, root: fromPlainPath(root) }));
    this.layers = this.upper ? [this.upper, ...lowers] : lowers;
    this.format = stack.format;
  }

  realPath(layer: Layer, comps: readonly string[]): string {
    return comps.length === 0 ? layer.root : layer.root + '/' + comps.join('/');
  }

  /**
   * Look `name` up in the merged directory formed by `parent` (top first).
   * Returns the top hit and, for a directory, the merging stack. The upper layer is
   * always looked at afresh (anyone may write it); answers from the lower layers,
   * which nobody writes, are cached until invalidateLowers().
   */
  lookupChild(parent: Hit[], name: string): { top?: Hit; merge: Hit[] } {
    if (parent.length === 0) return { merge: [] };
    if (parent[0].layer.ref !== 'upper') return this.lookupLowers(parent, name);
    const dir = parent[0];
    const real = dir.real + '/' + name;
    const st = lstatOrUndefined(real);
    const lowers = parent.length > 1 ? parent.slice(1) : undefined;
    if (this.format.whitesOut(dir, name, st, real)) return { merge: [] };
    if (st === undefined) return lowers ? this.lookupLowers(lowers, name) : { merge: [] };
    const top: Hit = { layer: dir.layer, real, st };
    if (!st.isDirectory() || !lowers) return { top, merge: st.isDirectory() ? [top] : [] };
    if (this.format.stopsMerge(dir, top, name)) return { top, merge: [top] };
    const below = this.lookupLowers(lowers, name);
    return { top, merge: below.top?.st.isDirectory() ? [top, ...below.merge] : [top] };
  }

  private lowerCache = new Map<string, { top?: Hit; merge: Hit[] }>();

  /** Forget cached lower-layer answers (a lower layer changed on disk). */
  invalidateLowers(): void {
    this.lowerCache.clear();
  }

  /**
   * Per lower layer: are its changes unseen by a watcher, so that a listing must look at its
   * directories afresh (lowersChanged)? All, unless the server's watcher says otherwise (a
   * layer watched whole, or one that cannot change).
   */
  freshLowers: readonly boolean[] = [];

  /**
   * Has a lower directory that merges into `entry` changed since the lookups cached it? Its
   * inode, mtime and ctime are taken afresh (the upper's are fresh already), in the lower
   * layers whose changes no watcher reports (freshLowers). How a change to a lower directory
   * nobody watches is seen: at the next listing of it.
   */
  lowersChanged(entry: Entry): boolean {
    for (const h of entry.merge) {
      if (h.layer.ref === 'upper' || this.freshLowers[h.layer.ref] === false) continue;
      const st = lstatOrUndefined(h.real);
      if (!st || st.ino !== h.st.ino || st.mtimeMs !== h.st.mtimeMs || st.ctimeMs !== h.st.ctimeMs) return true;
    }
    return false;
  }

  private lookupLowers(parent: Hit[], name: string): { top?: Hit; merge: Hit[] } {
    // The lower merge of a directory is fixed by its top-most lower copy (lower layers
    // do not change): that copy's real path and the merge's length name it. (Joining
    // every real path made keys of ~600 bytes on 8 layers: 100+ MiB at 200,000 names.)
    const key = parent.length + ':' + parent[0].real + '/' + name;
    let r = this.lowerCache.get(key);
    if (r === undefined) {
      r = this.scanLayers(parent, name);
      if (this.lowerCache.size >= lookupTuning.lowerLookups) this.lowerCache.clear();
      this.lowerCache.set(key, r);
    }
    return r;
  }

  private scanLayers(parent: Hit[], name: string): { top?: Hit; merge: Hit[] } {
    let top: Hit | undefined;
    const merge: Hit[] = [];
    for (const dir of parent) {
      const real = dir.real + '/' + name;
      const st = lstatOrUndefined(real);
      if (this.format.whitesOut(dir, name, st, real)) break;
      if (st === undefined) continue;
      const hit: Hit = { layer: dir.layer, real, st };
      if (top === undefined) {
        top = hit;
        if (!st.isDirectory()) break;
      } else if (!st.isDirectory()) break; // a non-directory below a directory is hidden and ends the merge
      merge.push(hit);
      if (dir === parent[parent.length - 1]) break;
      if (this.format.stopsMerge(dir, hit, name)) break;
    }
    return { top, merge };
  }

  rootEntry(): Found {
    const merge: Hit[] = [];
    for (const layer of this.layers) {
      merge.push({ layer, real: layer.root, st: layerLstat(layer.root) });
    }
    return { path: '/', comps: [], parent: [], top: merge[0], merge };
  }

  /**
   * Resolve request components. Intermediate symlinks are always followed, the last
   * one only when `followLast`; targets resolve inside the merged root (absolute
   * targets start at the overlay root, `..` stops at it), as a container sees them.
   */
  resolve(requestComps: readonly string[], followLast: boolean, syscall: string, requestPath: string): Entry {
    const todo = requestComps.slice();
    let resolved: string[] = [];
    let stacks: Hit[][] = [this.rootHits()];
    let hops = 0;
    while (todo.length > 0) {
      const name = todo.shift() as string;
      if (name === '..') {
        // only ever from a symlink target: stops at the root
        if (resolved.length > 0) {
          resolved.pop();
          stacks.pop();
        }
        continue;
      }
      const parentStack = stacks[stacks.length - 1];
      const cur = this.lookupChild(parentStack, name);
      const isLast = todo.length === 0;
      if (cur.top === undefined) {
        if (isLast) return { path: '/' + [...resolved, name].join('/'), comps: [...resolved, name], parent: parentStack, merge: [] };
        throw createError('ENOENT', syscall, requestPath);
      }
      if (cur.top.st.isSymbolicLink() && (!isLast || followLast)) {
        if (++hops > MAX_SYMLINKS) throw createError('ELOOP', syscall, requestPath);
        const target = readlinkName(cur.top.real);
        if (target.startsWith('/')) {
          resolved = [];
          stacks = [stacks[0]];
        }
        todo.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
        continue;
      }
      if (!isLast && !cur.top.st.isDirectory()) throw createError('ENOTDIR', syscall, requestPath);
      resolved.push(name);
      stacks.push(cur.merge);
      if (isLast) return { path: '/' + resolved.join('/'), comps: resolved, parent: parentStack, top: cur.top, merge: cur.merge };
    }
    if (resolved.length === 0) return this.rootEntry();
    const merge = stacks[stacks.length - 1];
    return { path: '/' + resolved.join('/'), comps: resolved, parent: stacks[stacks.length - 2], top: merge[0], merge };
  }

  /** The entry `name` inside the resolved directory entry `dir`: one lookup, as a walk down the tree sees it. */
  child(dir: Entry, name: string): Entry {
    const cur = this.lookupChild(dir.merge, name);
    return { path: (dir.path === '/' ? '/' : dir.path + '/') + name, comps: [...dir.comps, name], parent: dir.merge, top: cur.top, merge: cur.merge };
  }

  private cachedRoot?: Hit[];
  /** Root directories of every layer (stats may be old: use rootEntry() for fresh ones). */
  rootHits(): Hit[] {
    if (!this.cachedRoot) this.cachedRoot = this.rootEntry().merge;
    return this.cachedRoot;
  }

  /** Does `name` exist (not whited out) in a lower layer of the parent merge? The kernel's ovl_lower_positive. */
  lowerPositive(entry: Entry): boolean {
    if (entry.comps.length === 0) return true;
    const lowers = entry.parent.filter((h) => h.layer.ref !== 'upper');
    if (lowers.length === 0) return false;
    return this.lookupChild(lowers, entry.comps[entry.comps.length - 1]).top !== undefined;
  }

  private readonly listings = new Map<string, { merge: Hit[]; entries: DirEntry[] }>();
  private listedEntries = 0;

  /**
   * readdir() of a freshly resolved entry, remembered while every directory that
   * merges into it keeps its inode, mtime and ctime (a name added, removed or
   * renamed changes the mtime; an opaque or whiteout xattr changes the ctime).
   * The upper directory's stat comes fresh from the lookup, the lower ones are as
   * cached as the lookups themselves. Directories changed less than
   * lookupTuning.racyMs ago are not remembered.
   */
  readdirCached(entry: Entry): DirEntry[] {
    const c = this.listings.get(entry.path);
    if (c !== undefined && sameDirs(c.merge, entry.merge)) return c.entries;
    const entries = this.readdir(entry);
    if (c !== undefined) {
      this.listings.delete(entry.path);
      this.listedEntries -= c.entries.length;
    }
    const now = Date.now();
    if (entry.merge.every((h) => now - Math.max(h.st.mtimeMs, h.st.ctimeMs) >= lookupTuning.racyMs)) {
      if (this.listedEntries + entries.length > lookupTuning.listingNames) {
        this.listings.clear();
        this.listedEntries = 0;
      }
      this.listings.set(entry.path, { merge: entry.merge, entries });
      this.listedEntries += entries.length;
    }
    return entries;
  }

  /** Merged listing of a directory entry: upper first, then each lower; whiteouts never listed. */
  readdir(entry: Entry): DirEntry[] {
    const out: DirEntry[] = [];
    const seen = new Set<string>();
    const hidden = new Set<string>();
    for (const dir of entry.merge) {
      const verdict = this.format.entries(dir);
      const whiteoutsHere: string[] = [];
      for (const d of readdirEntries(dir.real)) {
        const name = d.name;
        if (seen.has(name) || hidden.has(name)) continue;
        const v = verdict(d);
        if (v === null) continue;
        if (typeof v === 'string') {
          whiteoutsHere.push(v);
          continue;
        }
        let type: EntryType;
        if (v !== undefined) type = typeOf(v);
        else if (d.isFile() || d.isDirectory() || d.isSymbolicLink() || d.isBlockDevice() || d.isCharacterDevice() || d.isFIFO() || d.isSocket()) {
          type = typeOf(d);
        } else {
          const st = lstatOrUndefined(dir.real + '/' + name);
          if (!st) continue;
          type = typeOf(st);
        }
        seen.add(name);
        out.push({ name, type });
      }
      for (const w of whiteoutsHere) hidden.add(w);
    }
    return out;
  }
}
