/**
 * How to cut a layer into pieces that chokidar scans one after another.
 *
 * chokidar lstat()s every entry of a tree it is given with all calls in flight at
 * once; on a layer of 1,000,000 files that peaked at 1.4 GiB of garbage, which the
 * process then kept as RSS. So a layer is split into subtrees of at most
 * `maxEntries` entries, each watched recursively by its own chokidar instance (which
 * also follows new and removed directories inside it), started one after another.
 * The directories above those subtrees — few, the top of large trees — are
 * watched alone (depth 0); a directory made in one of them later is handed to a
 * recursive instance by the watcher.
 */
import * as fs from 'node:fs';

export interface WatchPlan {
  /** Directories watched alone (depth 0). */
  alone: string[];
  /** Groups of subtree roots, each group one recursive chokidar instance of at most maxEntries entries. */
  groups: string[][];
  /** Entries seen (files and directories). */
  entries: number;
  /** Directories seen. */
  dirs: number;
}

interface Node {
  path: string;
  /** Entries in this subtree, itself included. */
  total: number;
  children: Node[];
}

/**
 * Walk `root` (directories only are kept; symlinks are not followed; `skip` dirs are
 * left out) and plan the watches. Synchronous readdir in slices: the walk yields to
 * the event loop every `slice` directories, so requests are served meanwhile. With
 * `limit`, the walk stops as soon as it has seen more entries or directories than that,
 * and answers undefined (too big to watch whole).
 */
export async function planWatches(
  root: string,
  skip: (dir: string) => boolean,
  maxEntries: number,
  slice = 200,
  limit?: { entries: number; dirs: number },
): Promise<WatchPlan | undefined> {
  const top: Node = { path: root, total: 1, children: [] };
  const todo: Node[] = [top];
  const order: Node[] = [];
  let n = 0;
  let seen = 1;
  while (todo.length > 0) {
    const node = todo.pop() as Node;
    order.push(node);
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(node.path, { withFileTypes: true });
    } catch {
      /* unreadable or gone: chokidar reports it */
    }
    node.total += entries.length;
    seen += entries.length;
    if (limit && (seen > limit.entries || order.length + todo.length > limit.dirs)) return undefined;
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = node.path + '/' + e.name;
      if (skip(p)) continue;
      const child: Node = { path: p, total: 0, children: [] }; // itself is counted in the parent's entries
      node.children.push(child);
      todo.push(child);
    }
    if (++n % slice === 0) await new Promise((r) => setImmediate(r));
  }
  // Children were visited after their parent: sum the subtrees bottom-up.
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    for (const c of node.children) node.total += c.total;
  }
  const alone: string[] = [];
  const trees: Node[] = [];
  const assign = (node: Node): void => {
    if (node.total <= maxEntries) trees.push(node);
    else {
      alone.push(node.path);
      for (const c of node.children) assign(c);
    }
  };
  assign(top);
  const groups: string[][] = [];
  let cur: string[] = [];
  let size = 0;
  for (const t of trees) {
    if (cur.length > 0 && size + t.total > maxEntries) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t.path);
    size += t.total;
  }
  if (cur.length > 0) groups.push(cur);
  return { alone, groups, entries: top.total, dirs: order.length };
}
