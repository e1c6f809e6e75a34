/**
 * Synthetic layer stacks for benchmarks, and mounts of the same layers (kernel
 * overlay, fuse-overlayfs) so both sides read the same data.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface BenchStack {
  root: string;
  lower: string[];
  upper: string;
  work: string;
  files: number;
  dirs: number;
  /** Sample of existing paths with the layer that serves them, and some misses. */
  samples: { path: string; layer: string }[];
  /** Date.now() when the last layer change was made. */
  builtAt: number;
}

/**
 * Wait until the layers are as users have them: not changed in the last seconds. The
 * engine does not cache what it read from directories changed less than
 * lookupTuning.racyMs (2 s) ago, so a stack measured right after it was built would
 * measure a state no real image layer is in.
 */
export async function settled(s: BenchStack): Promise<void> {
  const wait = s.builtAt + 2100 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * `files` files spread over `layers` lowers plus an upper, in directories of ~100
 * entries, with whiteouts (shared char 0/0 inode, as the kernel does) and opaque dirs.
 */
export function buildStack(root: string, files: number, layers: number, seed = 1): BenchStack {
  fs.rmSync(root, { recursive: true, force: true });
  const rand = rng(seed);
  const lower = Array.from({ length: layers }, (_, i) => path.join(root, `l${i}`));
  const upper = path.join(root, 'upper');
  const work = path.join(root, 'work');
  for (const d of [...lower, upper, work]) fs.mkdirSync(d, { recursive: true });
  const all = [upper, ...lower];
  const proto = path.join(root, 'whiteout-proto');
  execFileSync('mknod', [proto, 'c', '0', '0']);
  const perDir = 100;
  const dirCount = Math.max(1, Math.ceil(files / perDir));
  const made = new Set<string>();
  const samples: { path: string; layer: string }[] = [];
  let n = 0;
  for (let d = 0; d < dirCount; d++) {
    const rel = `d${d % 10}/s${Math.floor(d / 10) % 10}/t${Math.floor(d / 100)}`;
    for (let f = 0; f < perDir && n < files; f++, n++) {
      // Files tend to live in the bottom layers, as in images.
      const li = Math.min(all.length - 1, Math.floor((1 - rand() ** 2) * all.length));
      const dir = path.join(all[li], rel);
      if (!made.has(dir)) {
        fs.mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      const p = path.join(dir, `f${f}`);
      fs.writeFileSync(p, `file ${n} in layer ${li}\n`);
      if (samples.length < 2000 && rand() < 0.05) samples.push({ path: `/${rel}/f${f}`, layer: li === 0 ? 'upper' : `l${li - 1}` });
      // A whiteout for this name in some layer above hides it (as a delete would).
      if (li > 0 && rand() < 0.02) {
        const above = all[Math.floor(rand() * li)];
        const wdir = path.join(above, rel);
        if (!made.has(wdir)) {
          fs.mkdirSync(wdir, { recursive: true });
          made.add(wdir);
        }
        const w = path.join(wdir, `f${f}`);
        if (!fs.existsSync(w)) fs.linkSync(proto, w);
      }
    }
    if (d % 37 === 5) {
      // An opaque directory in the layer above the bottom one.
      const od = path.join(all[Math.max(0, all.length - 2)], rel);
      fs.mkdirSync(od, { recursive: true });
      made.add(od);
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', od]);
    }
  }
  fs.unlinkSync(proto);
  for (let i = 0; i < 200; i++) samples.push({ path: `/d${i % 10}/missing-${i}`, layer: 'miss' });
  return { root, lower, upper, work, files, dirs: made.size, samples, builtAt: Date.now() };
}

/**
 * A real tree as the bottom layer, read in place (never written: it is a lower layer):
 * `nodeModules`, with an upper holding what an `npm install` on top would leave — some
 * package.json files changed (copied up), some README files deleted (whiteouts).
 */
export function buildNodeModulesStack(root: string, nodeModules: string): BenchStack {
  fs.rmSync(root, { recursive: true, force: true });
  const upper = path.join(root, 'upper');
  const work = path.join(root, 'work');
  for (const d of [upper, work]) fs.mkdirSync(d, { recursive: true });
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(nodeModules, rel), { withFileTypes: true })) {
      const r = rel + '/' + e.name;
      if (e.isDirectory()) walk(r);
      else files.push(r);
    }
  };
  walk('');
  const rand = rng(7);
  const changed = new Set<string>();
  for (const f of files) {
    const base = path.basename(f);
    const up = path.join(upper, f);
    if (base === 'package.json' && rand() < 0.1) {
      fs.mkdirSync(path.dirname(up), { recursive: true });
      fs.writeFileSync(up, fs.readFileSync(path.join(nodeModules, f), 'utf8').replace(/\}\s*$/, ', "_changed": true }\n'));
      changed.add(path.dirname(up));
    } else if (/^readme/i.test(base) && rand() < 0.1) {
      fs.mkdirSync(path.dirname(up), { recursive: true });
      execFileSync('mknod', [up, 'c', '0', '0']);
      changed.add(path.dirname(up));
    }
  }
  const samples: { path: string; layer: string }[] = [];
  for (let i = 0; i < files.length && samples.length < 1000; i += Math.max(1, Math.floor(files.length / 1000))) {
    samples.push({ path: files[i], layer: fs.existsSync(path.join(upper, files[i])) ? 'upper' : 'l0' });
  }
  for (let i = 0; i < 200; i++) samples.push({ path: `${path.dirname(files[(i * 37) % files.length])}/missing-${i}`, layer: 'miss' });
  return { root, lower: [nodeModules], upper, work, files: files.length, dirs: changed.size, samples, builtAt: Date.now() };
}

export interface Mount {
  dir: string;
  unmount(): void;
}

export function mountKernel(s: BenchStack, name = 'kmnt'): Mount | string {
  const dir = path.join(s.root, name);
  const kwork = path.join(s.root, name + '-work');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(kwork, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${s.lower.join(':')},upperdir=${s.upper},workdir=${kwork}`, dir], { stdio: 'pipe' });
  } catch (err) {
    return `kernel overlay mount not permitted here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  return { dir, unmount: () => execFileSync('umount', [dir]) };
}

export function mountFuse(s: BenchStack): Mount | string {
  const dir = path.join(s.root, 'fmnt');
  const fwork = path.join(s.root, 'fmnt-work');
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(fwork, { recursive: true });
  try {
    execFileSync('fuse-overlayfs', ['-o', `lowerdir=${s.lower.join(':')},upperdir=${s.upper},workdir=${fwork}`, dir], { stdio: 'pipe' });
  } catch (err) {
    return `fuse-overlayfs not available: ${String((err as { stderr?: Buffer }).stderr ?? err)
      .trim()
      .slice(0, 200)}`;
  }
  return { dir, unmount: () => execFileSync('fusermount', ['-u', dir]) };
}

/** Node walking a real directory tree with types, one directory at a time. */
export async function walkReal(root: string): Promise<number> {
  let count = 0;
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
      count++;
      if (e.isDirectory()) stack.push(dir + '/' + e.name);
    }
  }
  return count;
}

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}
