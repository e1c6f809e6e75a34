/**
 * Random layer stacks the kernel could have produced: the bottom layer is a plain tree; every
 * layer above it (and the initial upper) is the upper directory left by a kernel overlay session
 * of random operations over the layers below. Whiteouts and opaque directories are therefore
 * exactly the kernel's own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../mocha/rng';
import { applyShell, genOp, NAMES, relativeTarget } from './ops';
import { dumpMount, OPAQUE_XATTR } from './tree';
import { mountKernel, OverlayDirs, run, unmount } from './shell';

export interface Stack {
  /** Directory that holds the layers (`L0` bottom ... `Ln` top lower, `U`, `W`, `M`). */
  root: string;
  /** Lower layer names, TOP-MOST FIRST. */
  lower: string[];
}

export function dirsOf(root: string, lowerNames: string[]): OverlayDirs {
  return {
    lower: lowerNames.map((n) => path.join(root, n)),
    upper: path.join(root, 'U'),
    work: path.join(root, 'W'),
    merged: path.join(root, 'M'),
  };
}

const MODES_F = [0o644, 0o644, 0o600, 0o755, 0o444];
const MODES_D = [0o755, 0o755, 0o700, 0o750];

/** A small random tree: dirs up to depth 3, files, relative symlinks that stay inside. */
function buildBottom(rng: Rng, dir: string): void {
  const made: string[] = [];
  const fill = (rel: string, depth: number): void => {
    const n = rng.int(depth === 0 ? 3 : 1, depth === 0 ? 6 : 4);
    const names = new Set<string>();
    for (let i = 0; i < n; i++) names.add(rng.pick(NAMES));
    for (const name of names) {
      const p = rel === '/' ? `/${name}` : `${rel}/${name}`;
      const real = path.join(dir, p);
      const r = rng.next();
      if (r < (depth === 0 ? 0.55 : 0.35) && depth < 3) {
        fs.mkdirSync(real);
        made.push(p);
        fill(p, depth + 1);
        fs.chmodSync(real, rng.pick(MODES_D));
      } else if (r < 0.85 || made.length === 0) {
        fs.writeFileSync(real, rng.word() + '\n');
        fs.chmodSync(real, rng.pick(MODES_F));
        made.push(p);
      } else {
        fs.symlinkSync(relativeTarget(rel, rng.pick(made)), real);
        made.push(p);
      }
    }
  };
  fill('/', 0);
}

/** Run `count` random operations on a kernel mount of `lower` with the (fresh) upper `upper`. */
async function session(rng: Rng, lower: string[], upper: string, scratch: string, count: number): Promise<void> {
  const d: OverlayDirs = { lower, upper, work: path.join(scratch, 'gw'), merged: path.join(scratch, 'gm') };
  fs.mkdirSync(d.work, { recursive: true });
  fs.mkdirSync(d.merged, { recursive: true });
  mountKernel(d);
  try {
    for (let i = 0; i < count; i++) {
      const { entries } = dumpMount(d.merged);
      await applyShell(genOp(rng, entries, d.merged, true), d.merged);
    }
  } finally {
    unmount(d.merged);
    fs.rmSync(d.work, { recursive: true, force: true });
    fs.rmSync(d.merged, { recursive: true, force: true });
  }
}

/**
 * Build a stack of `nLower` lower layers plus an upper (already holding some changes) under
 * `root`. Returns the lower names, top-most first.
 */
export async function buildStack(rng: Rng, root: string, nLower: number): Promise<Stack> {
  fs.mkdirSync(root, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < nLower; i++) {
    const name = `L${i}`;
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    if (i === 0) buildBottom(rng, dir);
    else
      await session(
        rng,
        names.map((n) => path.join(root, n)),
        dir,
        root,
        rng.int(3, 8),
      );
    names.unshift(name);
  }
  const upper = path.join(root, 'U');
  fs.mkdirSync(upper);
  if (rng.chance(0.7))
    await session(
      rng,
      names.map((n) => path.join(root, n)),
      upper,
      root,
      rng.int(1, 5),
    );
  fs.mkdirSync(path.join(root, 'W'));
  fs.mkdirSync(path.join(root, 'M'));
  return { root, lower: names };
}

/** Exact copy (modes, xattrs, device nodes) of the layers of a stack to `dest`. */
export function copyStack(stack: Stack, dest: string): Stack {
  fs.mkdirSync(dest, { recursive: true });
  for (const n of [...stack.lower, 'U']) run('cp', ['-a', path.join(stack.root, n), path.join(dest, n)]);
  fs.mkdirSync(path.join(dest, 'W'));
  fs.mkdirSync(path.join(dest, 'M'));
  return { root: dest, lower: [...stack.lower] };
}

interface XattrLib {
  getAttributeSync(path: string, name: string): Buffer | null | undefined;
  removeAttributeSync(path: string, name: string): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const xattr = require('@napi-rs/xattr') as XattrLib;

/**
 * Convert a kernel-format layer in place to the OCI/AUFS format: a whiteout char device 0/0
 * becomes an empty `.wh.<name>` file, an opaque xattr becomes a `.wh..wh..opq` file.
 */
export function kernelLayerToOci(dir: string): void {
  const visit = (d: string): void => {
    let opaque: Buffer | null | undefined;
    try {
      opaque = xattr.getAttributeSync(d, OPAQUE_XATTR);
    } catch {
      opaque = undefined;
    }
    if (opaque != null && opaque.toString() === 'y') {
      xattr.removeAttributeSync(d, OPAQUE_XATTR);
      fs.writeFileSync(path.join(d, '.wh..wh..opq'), '');
    }
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      if (st.isCharacterDevice() && st.rdev === 0) {
        fs.unlinkSync(p);
        fs.writeFileSync(path.join(d, `.wh.${name}`), '');
      } else if (st.isDirectory()) {
        visit(p);
      }
    }
  };
  visit(dir);
}
