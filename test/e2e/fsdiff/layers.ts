/**
 * The suite's stacks on disk: layer directories written from the generated placements
 * (kernel whiteout format: character device 0/0, `trusted.overlay.opaque`), the `file:`
 * reference copy of their merged tree, taken through a real kernel overlay mount of the same
 * layers (the overlay under test does not build its own reference), and plain dumps of
 * trees for the final comparison and the check that lower layers were never written.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Case, Layer } from './cases';

interface XattrLib {
  setAttributeSync(path: string, name: string, value: Buffer): void;
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null | undefined;
}
// The extension's own native dependency (N-API, so it loads in any Node).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const xattr = require('@napi-rs/xattr') as XattrLib;

/** The directories of one stack: `U` upper, `L0` (top) and `L1` lowers, `W` work, `ref` the reference copy. */
export interface StackLayers {
  readonly base: string;
  readonly upper: string;
  readonly lower: string[];
  readonly work: string;
  readonly ref: string;
  /** Files made immutable (chattr +i), relative to the stack root: in the upper layer and in the reference. */
  readonly immutable: string[];
}

export function layerDir(s: StackLayers, layer: Layer): string {
  return layer === 'U' ? s.upper : s.lower[layer];
}

/**
 * Writes the layers of `cases` into a new stack under `base`. Without `immutable` (a
 * filesystem without chattr +i) immutable files are plain files of the same mode.
 */
export function writeStack(base: string, cases: readonly Case[], immutable: boolean): StackLayers {
  const s: StackLayers = {
    base,
    upper: path.join(base, 'U'),
    lower: [path.join(base, 'L0'), path.join(base, 'L1')],
    work: path.join(base, 'W'),
    ref: path.join(base, 'ref'),
    immutable: [],
  };
  for (const d of [s.upper, ...s.lower, s.work]) fs.mkdirSync(d, { recursive: true });
  const devices: string[] = [];
  const fifos: string[] = [];
  const modes: [string, number][] = [];
  for (const c of cases) {
    // The case's directory exists in the merged view even when nothing is placed in it.
    fs.mkdirSync(path.join(s.lower[1], c.dir), { recursive: true });
    for (const { layer, path: rel, node } of c.layers) {
      const real = path.join(layerDir(s, layer), c.dir, rel);
      fs.mkdirSync(path.dirname(real), { recursive: true });
      switch (node.type) {
        case 'file':
          fs.writeFileSync(real, node.data);
          if (node.mode !== undefined) modes.push([real, node.mode]);
          if (node.immutable && immutable) s.immutable.push(path.relative(layerDir(s, layer), real));
          break;
        case 'dir':
          fs.mkdirSync(real, { recursive: true });
          if (node.opaque) xattr.setAttributeSync(real, 'trusted.overlay.opaque', Buffer.from('y'));
          if (node.mode !== undefined) modes.push([real, node.mode]);
          break;
        case 'link':
          fs.symlinkSync(node.target, real);
          break;
        case 'fifo':
          fifos.push(real);
          break;
        case 'whiteout':
          devices.push(real);
          break;
      }
    }
  }
  // One shell for all the nodes Node cannot make.
  if (devices.length || fifos.length) {
    execFileSync('sh', [
      '-ec',
      'n=$1; shift; i=0; for p; do i=$((i+1)); if [ $i -le $n ]; then mknod "$p" c 0 0; else mkfifo "$p"; fi; done',
      'sh',
      String(devices.length),
      ...devices,
      ...fifos,
    ]);
  }
  // Modes last, deepest first: a directory made unreadable after its children exist.
  for (const [real, mode] of modes.sort((a, b) => b[0].length - a[0].length)) fs.chmodSync(real, mode);
  chattr(
    '+i',
    s.immutable.map((rel) => path.join(s.upper, rel)),
  );
  return s;
}

function chattr(flag: '+i' | '-i', files: string[]): void {
  if (files.length) execFileSync('chattr', [flag, '--', ...files], { stdio: 'pipe' });
}

/** Removes a stack's directories, immutable files included. */
export function removeStack(s: StackLayers): void {
  for (const rel of s.immutable) {
    for (const dir of [s.upper, s.ref]) {
      try {
        chattr('-i', [path.join(dir, rel)]);
      } catch {
        // gone, or never made
      }
    }
  }
  fs.rmSync(s.base, { recursive: true, force: true });
}

/** Does the filesystem of `tmp` take chattr +i (ext4, xfs, btrfs do; tmpfs does not)? */
export function canMakeImmutable(tmp: string): boolean {
  const f = path.join(fs.mkdtempSync(path.join(tmp, 'chattr-')), 'f');
  fs.writeFileSync(f, '');
  try {
    chattr('+i', [f]);
    chattr('-i', [f]);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(path.dirname(f), { recursive: true, force: true });
  }
}

/** Mounts the layers as one read-only kernel overlay at `mnt` (top-most first), runs `fn`, unmounts. */
export function withKernelView<T>(lowerTopFirst: readonly string[], mnt: string, fn: (dir: string) => T): T {
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerTopFirst.map(escapeOption).join(':')}`, mnt], { stdio: 'pipe' });
  try {
    return fn(mnt);
  } finally {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    fs.rmdirSync(mnt);
  }
}

/** overlayfs mount options escape `:` and `,` in paths with a backslash. */
/**
 * `fn` on a read-only fuse-overlayfs mount of `lowerTopFirst` at `mnt`: layers an upper of
 * fuse-overlayfs was left in, read as fuse-overlayfs reads them (it marks an opaque directory
 * with the xattr and also leaves `.wh..opq` and `.wh..wh..opq` entries, which the kernel lists).
 */
export function withFuseView<T>(lowerTopFirst: readonly string[], mnt: string, fn: (dir: string) => T): T {
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('fuse-overlayfs', ['-o', `lowerdir=${lowerTopFirst.join(':')}`, mnt], { stdio: 'pipe' });
  try {
    return fn(mnt);
  } finally {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    fs.rmdirSync(mnt);
  }
}

function escapeOption(p: string): string {
  return p.replace(/[\\:,]/g, (c) => `\\${c}`);
}

/** The reference: a plain `file:` copy (cp -a) of the merged tree as the kernel shows it. */
export function makeReference(s: StackLayers): void {
  withKernelView([s.upper, ...s.lower], path.join(s.base, 'mnt'), (dir) => {
    execFileSync('cp', ['-a', '--', `${dir}/.`, s.ref], { stdio: 'pipe' });
  });
  chattr(
    '+i',
    s.immutable.map((rel) => path.join(s.ref, rel)),
  );
}

/** Can this process mount a kernel overlay (and make whiteouts)? Undefined when it can, else why not. */
export function cannotMount(tmp: string): string | undefined {
  if (process.getuid?.() !== 0)
    return `the reference copy is taken through a kernel overlay mount and the layers hold whiteouts (mknod): both need root, and this extension host runs as uid ${process.getuid?.()}`;
  const base = fs.mkdtempSync(path.join(tmp, 'probe-'));
  try {
    const layers = [path.join(base, 'a'), path.join(base, 'b')];
    for (const l of layers) fs.mkdirSync(l);
    withKernelView(layers, path.join(base, 'mnt'), () => undefined);
    return undefined;
  } catch (err) {
    return `cannot mount a kernel overlay here (${(err as Error).message.split('\n')[0]})`;
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

export interface DumpOptions {
  /** Include ctime and mtime (the check that nothing was written). */
  readonly times?: boolean;
}

/**
 * Every entry below `dir` as `relative path → description` (type, mode, size and content
 * hash, symlink target, device numbers, overlay xattrs). Symlinks are not followed.
 */
export function dumpTree(dir: string, opts: DumpOptions = {}): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const real = rel ? path.join(dir, rel) : dir;
    const st = fs.lstatSync(real);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    const times = opts.times ? ` ctime=${st.ctimeMs} mtime=${st.mtimeMs}` : '';
    let line: string;
    if (st.isDirectory()) line = `d ${mode}${overlayXattrs(real)}`;
    else if (st.isFile()) line = `f ${mode} ${st.size} ${createHash('sha1').update(fs.readFileSync(real)).digest('hex').slice(0, 12)}`;
    else if (st.isSymbolicLink()) line = `l -> ${fs.readlinkSync(real)}`;
    else if (st.isFIFO()) line = `p ${mode}`;
    else if (st.isCharacterDevice()) line = `c ${mode} ${st.rdev}`;
    else line = `? ${mode}`;
    out.set(rel || '.', line + times);
    if (st.isDirectory()) for (const name of fs.readdirSync(real).sort()) visit(rel ? `${rel}/${name}` : name);
  };
  visit('');
  return out;
}

function overlayXattrs(real: string): string {
  try {
    return xattr
      .listAttributesSync(real)
      .filter((n) => n.startsWith('trusted.overlay.') || n.startsWith('user.overlay.'))
      .sort()
      .map((n) => ` ${n}=${xattr.getAttributeSync(real, n)?.toString('latin1') ?? ''}`)
      .join('');
  } catch {
    return '';
  }
}

/** Entries of a dump below `prefix` (a case directory), keyed relative to it. */
export function subtree(dump: ReadonlyMap<string, string>, prefix: string): Map<string, string> {
  if (!prefix) return new Map(dump);
  const out = new Map<string, string>();
  for (const [k, v] of dump) {
    if (k === prefix) out.set('.', v);
    else if (k.startsWith(prefix + '/')) out.set(k.slice(prefix.length + 1), v);
  }
  return out;
}

/** Lines that differ between two dumps, `-` only in a, `+` only in b. */
export function diffDumps(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] {
  const lines: string[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k);
    const y = b.get(k);
    if (x === y) continue;
    if (x !== undefined) lines.push(`- ${k} ${x}`);
    if (y !== undefined) lines.push(`+ ${k} ${y}`);
  }
  return lines;
}

/** Every FIFO below `dir` (not through symlinks), as real paths. */
export function fifosUnder(dir: string): string[] {
  const out: string[] = [];
  const visit = (real: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(real);
    } catch {
      return;
    }
    if (st.isFIFO()) out.push(real);
    else if (st.isDirectory()) for (const n of fs.readdirSync(real)) visit(path.join(real, n));
  };
  visit(dir);
  return out;
}
