/**
 * Changes of the upper layer against the lower ones, in `docker diff` form: the
 * algorithm of moby's pkg/archive changes() for overlay, with the lower lookup done
 * through the merged lower layers (whiteouts honoured) instead of raw layer stats.
 */
import * as fs from 'node:fs';
import type { LayerView } from './lookup';
import { lstatOrUndefined } from './lstat';
import { compareNames, encodePath, readdirEntries } from './names';
import { splitRequestPath } from './paths';
import type { Change } from './types';

function sameFsTime(a: number, b: number): boolean {
  return a === b || (Math.floor(a / 1000) === Math.floor(b / 1000) && (a % 1000 === 0 || b % 1000 === 0));
}

export function diffUpper(view: LayerView, lowers: LayerView): Change[] {
  const upper = view.upper;
  if (!upper) return [];
  const changes: Change[] = [];
  const changedDirs = new Set<string>();
  const lowerStat = (p: string): fs.Stats | undefined => {
    try {
      return lowers.resolve(splitRequestPath(p, 'diff'), false, 'diff', p).top?.st;
    } catch {
      return undefined;
    }
  };
  const record = (c: Change): void => {
    if (c.kind === 'A' || c.kind === 'D') {
      const parent = c.path.slice(0, c.path.lastIndexOf('/')) || '/';
      if (parent !== '/' && !changedDirs.has(parent)) {
        changes.push({ kind: 'C', path: parent });
        changedDirs.add(parent);
      }
    }
    changes.push(c);
  };
  const walk = (real: string, p: string, dirSt: fs.Stats): void => {
    const verdict = view.format.entries({ real, st: dirSt });
    const base = p === '/' ? '' : p;
    for (const d of readdirEntries(real).sort((a, b) => compareNames(a.name, b.name))) {
      const v = verdict(d);
      if (v === null) continue;
      if (typeof v === 'string') {
        record({ kind: 'D', path: base + '/' + v });
        continue;
      }
      const childReal = real + '/' + d.name;
      const st = v ?? lstatOrUndefined(childReal);
      if (!st) continue;
      const childPath = base + '/' + d.name;
      if (st.isDirectory() && view.format.isOpaque(childReal)) {
        if (lowerStat(childPath)) {
          record({ kind: 'D', path: childPath });
          changedDirs.add(childPath);
        } else {
          record({ kind: 'A', path: childPath });
          changedDirs.add(childPath);
        }
        walk(childReal, childPath, st);
        continue;
      }
      const lst = lowerStat(childPath);
      if (!lst) {
        record({ kind: 'A', path: childPath });
      } else if (st.isDirectory() && lst.isDirectory() && st.size === lst.size && st.mode === lst.mode && sameFsTime(st.mtimeMs, lst.mtimeMs)) {
        // Same directory: not a change by itself.
      } else {
        record({ kind: 'C', path: childPath });
      }
      if (st.isDirectory()) {
        if (changes.length > 0 && changes[changes.length - 1].path === childPath) changedDirs.add(childPath);
        walk(childReal, childPath, st);
      }
    }
  };
  walk(upper.root, '/', fs.lstatSync(encodePath(upper.root)));
  // Sorted by path (bytewise), whatever order the whiteout format put them on disk.
  return changes.sort((a, b) => compareNames(a.path, b.path));
}
