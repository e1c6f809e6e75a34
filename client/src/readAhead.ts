/**
 * Read-ahead of directory listings. No `vscode` here: the benchmarks run this same code.
 *
 * A listing asked for through overlay:// brings, in the same round trip, the listings of
 * the directories below it (overlay/readDirectories, up to `budget` entries in all). They
 * wait here to be asked for: once each, for at most `ttlMs`, and never past a change in
 * their overlay: any change event, any write sent by this window, and a server restart
 * drop them. Walking a tree (the explorer opening folders, other extensions listing the
 * workspace through workspace.fs) then costs one round trip per few thousand entries
 * instead of one per directory.
 *
 * Dropping everything an overlay holds on any change is coarse on purpose: it needs no
 * reasoning about which listings a change touches (whiteouts, opaque directories, renames
 * of lower directories), and while an overlay changes all the time read-ahead only falls
 * back to one round trip per directory.
 */
import type { ReadDirectories } from '../../shared/src/protocol';

export type Entries = [string, number][];
export type FetchListings = (params: ReadDirectories.Params) => Promise<ReadDirectories.Listing[]>;

export interface ReadAheadOptions {
  /** Entries asked for per round trip (the first listing always comes whole). */
  budget?: number;
  /**
   * Entries asked for by an overlay's first round trip (when a window opens, its root): what
   * shows first waits for no more read-ahead than this (default 512, at most `budget`).
   */
  firstBudget?: number;
  /** How long a listing read ahead may wait to be asked for. */
  ttlMs?: number;
  /** Entries held in all; the oldest listings go first beyond it. */
  maxHeld?: number;
  now?: () => number;
}

interface Held {
  name: string;
  entries: Entries;
  at: number;
  /** Some of its subdirectories were not read ahead with it (the budget ran out). */
  frontier: boolean;
}

const DIRECTORY = 2;

function pairs(l: ReadDirectories.Listing): Entries {
  const out: Entries = new Array(l.names.length);
  for (let i = 0; i < l.names.length; i++) out[i] = [l.names[i], l.types[i]];
  return out;
}

export class ReadAhead {
  readonly budget: number;
  readonly firstBudget: number;
  /** Overlays asked for a listing already (the next round trips take the whole budget). */
  private readonly started = new Set<string>();
  private readonly ttlMs: number;
  private readonly maxHeld: number;
  private readonly now: () => number;
  /** Keyed by overlay name + NUL + path; in the order fetched. */
  private readonly held = new Map<string, Held>();
  private heldEntries = 0;
  /** Per overlay, bumped by each change, and `epoch` by clear(): listings fetched across either are not kept. */
  private readonly generations = new Map<string, number>();
  private epoch = 0;
  /** Listings served from what was read ahead, and round trips made (for tests and the benchmarks). */
  hits = 0;
  fetches = 0;
  /** Changes seen (each dropped what its overlay held). */
  changes = 0;

  constructor(
    private readonly fetch: FetchListings,
    opts: ReadAheadOptions = {},
  ) {
    this.budget = opts.budget ?? 4096;
    this.firstBudget = Math.min(this.budget, opts.firstBudget ?? 512);
    this.ttlMs = opts.ttlMs ?? 2000;
    this.maxHeld = opts.maxHeld ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /** The merged listing of `path` in overlay `name`: read ahead, or fetched (with what lies below it). */
  async readDirectory(name: string, path: string): Promise<Entries> {
    const key = name + '\0' + path;
    const hit = this.held.get(key);
    if (hit) {
      this.drop(key, hit);
      // A listing at the edge of what was read ahead is asked for again, with what lies
      // below it: a walk then makes one round trip per budget, not one per directory there.
      if (!hit.frontier && this.now() - hit.at <= this.ttlMs) {
        this.hits++;
        return hit.entries;
      }
    }
    const generation = this.generations.get(name) ?? 0;
    const epoch = this.epoch;
    const at = this.now();
    this.fetches++;
    const budget = this.started.has(name) ? this.budget : this.firstBudget;
    this.started.add(name);
    const listings = await this.fetch({ name, path, budget });
    if ((this.generations.get(name) ?? 0) === generation && this.epoch === epoch) {
      this.expire();
      const listed = new Set(listings.map((l) => l.path));
      for (let i = 1; i < listings.length; i++) {
        const l = listings[i];
        const base = l.path === '/' ? '/' : l.path + '/';
        const frontier = l.types.some((t, j) => t === DIRECTORY && !listed.has(base + l.names[j]));
        this.hold(name + '\0' + l.path, { name, entries: pairs(l), at, frontier });
      }
    }
    return pairs(listings[0]);
  }

  /** Something in overlay `name` changed (or is about to): forget what was read ahead of it. */
  changed(name: string): void {
    this.changes++;
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
    for (const [key, h] of this.held) if (h.name === name) this.drop(key, h);
  }

  /** Forget everything (a restarted server may have missed changes). */
  clear(): void {
    this.epoch++;
    this.held.clear();
    this.heldEntries = 0;
  }

  /** Listings held now (tests). */
  get size(): number {
    return this.held.size;
  }

  private hold(key: string, h: Held): void {
    const old = this.held.get(key);
    if (old) this.drop(key, old);
    this.held.set(key, h);
    this.heldEntries += h.entries.length;
    for (const [k, o] of this.held) {
      if (this.heldEntries <= this.maxHeld) break;
      this.drop(k, o);
    }
  }

  private drop(key: string, h: Held): void {
    if (this.held.delete(key)) this.heldEntries -= h.entries.length;
  }

  /** Drop expired listings from the front (they were held in about the order fetched). */
  private expire(): void {
    const now = this.now();
    for (const [k, h] of this.held) {
      if (now - h.at <= this.ttlMs) break;
      this.drop(k, h);
    }
  }
}
