/**
 * A named exception for the mounted-view differential: a lookup defect of fuse-overlayfs (seen in
 * 1.10, Debian's package) on stacks in the OCI whiteout format.
 *
 * The stack: a directory D made opaque by a `.wh..wh..opq` file in layer k (the OCI image spec's
 * opaque whiteout: D's entries in the layers below k are hidden), and D's parent holding a
 * `.wh.NAME` whiteout in some layer (above k, at k or below it: each was seen). Once the parent and
 * then D have been listed, a lookup of a name that D has only below layer k finds it — while the
 * listing of D leaves it out, and a lookup on a fresh mount (nothing listed) gives ENOENT. With
 * the kernel's opaque xattr in place of the file, or without a whiteout in the parent,
 * fuse-overlayfs answers ENOENT every time, as the kernel and the engine do. So fuse-overlayfs contradicts itself, and the spec; the engine
 * is right. A listing never shows the entry: only what stat() through a symlink gives can differ
 * (the dump follows each symlink after walking the tree).
 *
 * An engine/fuse-overlayfs difference counts as this defect only when all of these hold: both
 * sides show the same symlink with the same target, only what it resolves to differs; the target
 * (resolved lexically) passes through a directory of that shape, or through another symlink that
 * does; and on a fresh mount of the same layers, stat() through that symlink before any listing
 * gives the engine's answer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const OPAQUE_FILE = '.wh..wh..opq';
const SYMLINK_LINE = /^(- |\+ )([^:]+): (\/.*) l -> (.*) \[([^\]]*)\]$/;

/** A symlink whose resolution fuse-overlayfs may get wrong: its path, and the directory to blame. */
export interface Suspect {
  path: string;
  target: string;
  fuse: string;
  engine: string;
  opaqueDir: string;
}

/** Whether `dir` (relative, no leading slash) holds a `.wh..wh..opq` in some layer and its parent a `.wh.` whiteout in some layer. */
function defectShape(layers: string[], dir: string): boolean {
  const parent = path.posix.dirname(dir);
  const whiteoutIn = (l: string): boolean => {
    try {
      return fs.readdirSync(path.join(l, parent === '.' ? '' : parent)).some((n) => n.startsWith('.wh.') && n !== OPAQUE_FILE);
    } catch {
      return false;
    }
  };
  return layers.some((l) => fs.existsSync(path.join(l, dir, OPAQUE_FILE))) && layers.some(whiteoutIn);
}

/**
 * The pairs of lines in `diff` (diffLines of the fuse-overlayfs dump against the engine's) that
 * have the defect's shape in `layers` (top first: upper, then the lowers). Each still needs the
 * fresh-mount check (confirm).
 */
export function suspects(diff: string[], layers: string[]): Suspect[] {
  const fuse = new Map<string, { target: string; follow: string }>();
  const engine = new Map<string, { target: string; follow: string }>();
  for (const line of diff) {
    const m = SYMLINK_LINE.exec(line);
    if (!m) continue;
    (m[1] === '- ' ? fuse : engine).set(m[3], { target: m[4], follow: m[5] });
  }
  const out: Suspect[] = [];
  // A symlink whose target goes through such a directory, or through another such symlink (found
  // in an earlier round: resolution follows it), until no more are found.
  for (let found = true; found;) {
    found = false;
    for (const [p, f] of fuse) {
      const e = engine.get(p);
      if (!e || e.target !== f.target || e.follow === f.follow || out.some((s) => s.path === p)) continue;
      const parts = path.posix.resolve(path.posix.dirname(p), f.target).slice(1).split('/');
      for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        const via = out.find((s) => s.path === `/${prefix}`);
        const blame = via ? via.opaqueDir : i < parts.length && defectShape(layers, prefix) ? `/${prefix}` : undefined;
        if (blame) {
          out.push({ path: p, target: f.target, fuse: f.follow, engine: e.follow, opaqueDir: blame });
          found = true;
          break;
        }
      }
    }
  }
  return out;
}

/** What stat() through `p` gives under `root`: a type letter or an errno code (as the dumps write it). */
export function followFresh(root: string, p: string): string {
  try {
    const st = fs.statSync(path.join(root, p));
    return st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : '?';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'ERR';
  }
}

/** `diff` without the lines of the confirmed suspects. */
export function withoutConfirmed(diff: string[], confirmed: Suspect[]): string[] {
  const paths = new Set(confirmed.map((s) => s.path));
  return diff.filter((line) => {
    const m = SYMLINK_LINE.exec(line);
    return !(m && paths.has(m[3]));
  });
}
