/**
 * Changes of the upper layer against the lower ones, as `docker diff` prints them on a kernel
 * with overlay `redirect_dir` (most distribution kernels): Docker's daemon then computes its
 * "naive" diff — moby pkg/archive ChangesDirs, the merged tree compared with the lower one
 * entry by entry (FileInfo.addChanges, statDifferent) — and this is that algorithm, walking only
 * what the upper layer holds (everything else is the same lower entry on both sides):
 * - a name in the upper: `A` when the lowers have none, `C` when the stat differs (mode with its
 *   type, uid, gid, rdev; for non-directories also size and mtime, a whole-second mtime equal to
 *   any of its nanoseconds, and nanoseconds within 2 µs equal: see sameFsTime) or
 *   security.capability does;
 * - a lower name the merged directory no longer lists: `D` — whited out, or hidden by an
 *   opaque directory (each lower entry it hides, `hiddenBy` naming it), not its children;
 * - every directory with a change inside that is not itself `A` or `C` is `C` (the root
 *   excepted), so every ancestor of a change is listed.
 * A directory replaced inside a container (`rm -rf d && mkdir d`, an opaque directory) is
 * `C d`, a `D` for each entry the lower `d` had and an `A` for each new one. Sorted by path,
 * bytewise (Docker's own order follows Go map iteration, which is random).
 *
 * The walk gives the event loop back every YIELD_AFTER_MS of work: on an upper of tens of
 * thousands of entries it takes seconds, and the server's listings and stats must not wait
 * behind it (a window's first diff held the explorer's listings 8–12 s on the 1 000 000-file
 * bench stack). Entries that change meanwhile are compared as they are when reached, as
 * `docker diff` does on a running container.
 */
import * as fs from 'node:fs';
import type { Found, LayerView } from './lookup';
import { typeOf } from './lstat';
import { encodePath, compareNames, readdirEntries } from './names';
import type { Change } from './types';
import { getXattr } from './xattr';

const S_IFDIR = 0o040000n;
const NS = 1_000_000_000n;

/** What moby compares of an entry. */
interface Compared {
  st: fs.BigIntStats;
  capability?: Buffer;
}

function compared(real: string): Compared | undefined {
  try {
    const st = fs.lstatSync(encodePath(real), { bigint: true });
    return { st, capability: st.isFile() ? getXattr(real, 'security.capability') : undefined };
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * Node sets times through a double (seconds): a copy made here (copy-up, restore) keeps its
 * source's mtime within this many nanoseconds, where the kernel's copy-up keeps it exactly.
 */
const SET_TIME_PRECISION_NS = 2000n;

/**
 * moby sameFsTimeSpec: the same second, and the same nanoseconds or either one whole — the
 * nanoseconds "the same" within SET_TIME_PRECISION_NS, so that our own copies are not changes.
 */
function sameFsTime(a: bigint, b: bigint): boolean {
  const an = a % NS;
  const bn = b % NS;
  const near = an > bn ? an - bn <= SET_TIME_PRECISION_NS : bn - an <= SET_TIME_PRECISION_NS;
  return a / NS === b / NS && (near || an === 0n || bn === 0n);
}

/** moby statDifferent (unix), with its test of the directory bit alone (block devices and sockets have it too). */
function statDifferent(o: fs.BigIntStats, n: fs.BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  return (o.mode & S_IFDIR) !== S_IFDIR && (!sameFsTime(o.mtimeNs, n.mtimeNs) || o.size !== n.size);
}

/** The lower layer of an entry of the lower view. */
function layerOf(e: Found): number {
  return e.top.layer.ref as number;
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

/** How long the walk runs before it lets other requests in. */
const YIELD_AFTER_MS = 8;

export async function diffUpper(view: LayerView, lowers: LayerView): Promise<Change[]> {
  if (!view.upper) return [];
  const out: Change[] = [];
  let ranSince = performance.now();
  const share = async (): Promise<void> => {
    if (performance.now() - ranSince < YIELD_AFTER_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    ranSince = performance.now();
  };
  const child = (dir: string, name: string): string => (dir === '/' ? '/' : dir + '/') + name;

  /** Directory `e` of the merged tree, whose top copy is in the upper layer; `old` the lower tree's entry at its path. */
  const visit = async (e: Found, old: Found | undefined, added: boolean): Promise<void> => {
    const at = out.length;
    const up = e.top;
    const oldNames = new Set(old?.top.st.isDirectory() ? lowers.readdir(old).map((d) => d.name) : []);
    const verdict = view.format.entries(up);
    for (const d of readdirEntries(up.real).sort((a, b) => compareNames(a.name, b.name))) {
      await share();
      const v = verdict(d);
      if (v === null || typeof v === 'string') continue; // markers; whiteouts show as missing names below
      const nc = view.child(e, d.name);
      if (!nc.top || nc.top.layer.ref !== 'upper') continue;
      const p = child(e.path, d.name);
      const oc = old && oldNames.has(d.name) ? lowers.child(old, d.name) : undefined;
      const type = typeOf(nc.top.st);
      let childAdded = false;
      if (oc?.top) {
        oldNames.delete(d.name);
        const o = compared(oc.top.real);
        const n = compared(nc.top.real);
        if (o && n && (statDifferent(o.st, n.st) || !sameBytes(o.capability, n.capability))) {
          out.push({ kind: 'C', path: p, type, lowerLayer: layerOf(oc as Found) });
          childAdded = true;
        }
      } else {
        out.push({ kind: 'A', path: p, type });
        childAdded = true;
      }
      if (nc.top.st.isDirectory()) await visit(nc as Found, oc?.top ? (oc as Found) : undefined, childAdded);
    }
    if (oldNames.size > 0) {
      // Lower names the merged directory no longer shows: whited out, or (when it merges with
      // nothing below: opaque, or over a lower non-directory) hidden by the directory itself.
      const merges = e.merge.length > 1;
      const shown = merges ? new Set(view.readdir(e).map((d) => d.name)) : new Set<string>();
      for (const name of oldNames) {
        if (shown.has(name)) continue;
        const gone: Change = { kind: 'D', path: child(e.path, name) };
        const oc = lowers.child(old as Found, name);
        if (oc.top) gone.lowerLayer = layerOf(oc as Found);
        if (!merges) gone.hiddenBy = e.path;
        out.push(gone);
      }
    }
    if (out.length > at && !added && e.path !== '/') {
      const dir: Change = { kind: 'C', path: e.path, type: 'd' };
      if (old) dir.lowerLayer = layerOf(old);
      out.splice(at, 0, dir);
    }
  };

  await visit(view.rootEntry(), lowers.rootEntry(), false);
  return out.sort((a, b) => compareNames(a.path, b.path));
}
