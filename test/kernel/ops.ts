/**
 * Random file-system operations: generated from the current merged view, rendered as coreutils
 * commands for a mount, and applied through the engine API with the same meaning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../mocha/rng';
import { escapesRoot, MergedEntry } from './tree';
import { q, sh } from './shell';

export type Op =
  | { kind: 'write'; path: string; data: string }
  | { kind: 'append'; path: string; data: string }
  | { kind: 'truncate'; path: string; size: number }
  | { kind: 'mkdir'; path: string }
  | { kind: 'mkdirp'; path: string }
  | { kind: 'unlink'; path: string }
  | { kind: 'rmdir'; path: string }
  | { kind: 'rmr'; path: string }
  | { kind: 'rename'; src: string; dst: string }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'chmod'; path: string; mode: number }
  /** Generation only: `rm -r P && mkdir P`, the usual way the kernel makes an opaque directory. */
  | { kind: 'recreate'; path: string }
  | CliOnlyOp;

/**
 * Commands whose coreutils meaning is more than one engine call (the CLI's business, see
 * server/src/cliCommands.ts): generated only for the CLI target.
 */
export type CliOnlyOp =
  /** `truncate -s N P`: creates a missing file, through a dangling symlink its target. */
  | { kind: 'truncateCreate'; path: string; size: number }
  /** `mv SRC DST`: into DST when it is a directory; refuses SRC onto itself. */
  | { kind: 'mvInto'; src: string; dst: string }
  /** `ln -s TARGET P`: inside P when it is a directory. */
  | { kind: 'lnInto'; target: string; path: string }
  /** `ln -sf TARGET P`: replaces a non-directory P. */
  | { kind: 'lnForce'; target: string; path: string }
  /** `rm -f P`: a missing P is no error. */
  | { kind: 'rmf'; path: string }
  /** `chmod MODE P` with a symbolic MODE (the umask applies without ugoa). */
  | { kind: 'chmodSym'; path: string; mode: string };

export const CLI_ONLY = new Set<Op['kind']>(['truncateCreate', 'mvInto', 'lnInto', 'lnForce', 'rmf', 'chmodSym']);

export interface OpResult {
  ok: boolean;
  /** The CLI's exit status (2: it did not understand the command). */
  exit?: number;
  /** Acceptable codes for the failure (empty: unknown). */
  codes: string[];
  detail?: string;
}

export const NAMES = ['a', 'b', 'c', 'd', 'e', 'f'];
const MODES = [0o644, 0o600, 0o755, 0o700, 0o664, 0o444, 0o555, 0o750];

/** The command a shell runs for `op`, with paths relative to the mount root (cwd). */
export function opCommand(op: Op): string {
  const r = (p: string): string => q(`.${p}`);
  switch (op.kind) {
    case 'write':
      return `printf '%s' ${q(op.data)} > ${r(op.path)}`;
    case 'append':
      return `printf '%s' ${q(op.data)} >> ${r(op.path)}`;
    case 'truncate':
      return `truncate -c -s ${op.size} ${r(op.path)}`;
    case 'mkdir':
      return `mkdir ${r(op.path)}`;
    case 'mkdirp':
      return `mkdir -p ${r(op.path)}`;
    case 'unlink':
      return `rm ${r(op.path)}`;
    case 'rmdir':
      return `rmdir ${r(op.path)}`;
    case 'rmr':
      return `rm -r ${r(op.path)}`;
    case 'rename':
      return `mv -T ${r(op.src)} ${r(op.dst)}`;
    case 'symlink':
      return `ln -sT ${q(op.target)} ${r(op.path)}`;
    case 'chmod':
      return `chmod ${op.mode.toString(8).padStart(4, '0')} ${r(op.path)}`;
    case 'recreate':
      return `rm -r ${r(op.path)} && mkdir ${r(op.path)}`;
    case 'truncateCreate':
      return `truncate -s ${op.size} ${r(op.path)}`;
    case 'mvInto':
      return `mv ${r(op.src)} ${r(op.dst)}`;
    case 'lnInto':
      return `ln -s ${q(op.target)} ${r(op.path)}`;
    case 'lnForce':
      return `ln -sf ${q(op.target)} ${r(op.path)}`;
    case 'rmf':
      return `rm -f ${r(op.path)}`;
    case 'chmodSym':
      return `chmod ${q(op.mode)} ${r(op.path)}`;
  }
}

/** The overlayws arguments (after the stack) for `op`, and its stdin: the same command as opCommand's. */
export function opCliArgs(op: Op): { args: string[]; input?: string } {
  switch (op.kind) {
    case 'write':
      return { args: ['write', op.path], input: op.data };
    case 'append':
      return { args: ['append', op.path], input: op.data };
    case 'truncate':
      return { args: ['truncate', '-c', '-s', String(op.size), op.path] };
    case 'truncateCreate':
      return { args: ['truncate', '-s', String(op.size), op.path] };
    case 'mkdir':
      return { args: ['mkdir', op.path] };
    case 'mkdirp':
      return { args: ['mkdir', '-p', op.path] };
    case 'unlink':
      return { args: ['rm', op.path] };
    case 'rmf':
      return { args: ['rm', '-f', op.path] };
    case 'rmdir':
      return { args: ['rmdir', op.path] };
    case 'rmr':
      return { args: ['rm', '-r', op.path] };
    case 'rename':
      return { args: ['mv', '-T', op.src, op.dst] };
    case 'mvInto':
      return { args: ['mv', op.src, op.dst] };
    case 'symlink':
      return { args: ['ln', '-sT', op.target, op.path] };
    case 'lnInto':
      return { args: ['ln', '-s', op.target, op.path] };
    case 'lnForce':
      return { args: ['ln', '-sf', op.target, op.path] };
    case 'chmod':
      return { args: ['chmod', op.mode.toString(8).padStart(4, '0'), op.path] };
    case 'chmodSym':
      return { args: ['chmod', op.mode, op.path] };
    case 'recreate':
      throw new Error('recreate is two commands; it only builds stacks');
  }
}

export function describeOp(op: Op): string {
  return opCommand(op);
}

export async function applyShell(op: Op, mountRoot: string): Promise<OpResult> {
  const res = await sh(opCommand(op), mountRoot);
  let codes = res.codes;
  // mv checks "directory over non-directory" itself before calling rename(2), which would check
  // "destination inside source" (EINVAL) first: accept the syscall's answer too.
  if (op.kind === 'rename' && /cannot overwrite non-directory/.test(res.stderr)) codes = [...codes, 'EINVAL'];
  // Likewise "file over directory" before rename(2) would see that the directory holds the
  // source (ENOTEMPTY, the target is an ancestor): accept the syscall's answer there too.
  if (op.kind === 'rename' && /cannot overwrite directory .* with non-directory/.test(res.stderr) && holdsSource(mountRoot, op.src, op.dst))
    codes = [...codes, 'ENOTEMPTY'];
  return { ok: res.ok, codes, detail: res.ok ? undefined : res.stderr.trim() };
}

/** Is the directory `dst` reaches an ancestor of the directory `src` sits in (resolved on the mount)? */
function holdsSource(mountRoot: string, src: string, dst: string): boolean {
  try {
    const d = fs.realpathSync(path.join(mountRoot, dst));
    const parent = fs.realpathSync(path.dirname(path.join(mountRoot, src)));
    return parent === d || parent.startsWith(d + '/');
  } catch {
    return false;
  }
}

/** The part of the engine API the operations use. */
export interface EngineOps {
  writeFile(p: string, data: string | Buffer): Promise<void>;
  appendFile(p: string, data: string | Buffer): Promise<void>;
  truncate(p: string, size: number): Promise<void>;
  mkdir(p: string, opts?: { recursive?: boolean }): Promise<unknown>;
  unlink(p: string): Promise<void>;
  rmdir(p: string): Promise<void>;
  rm(p: string, opts?: { recursive?: boolean }): Promise<void>;
  rename(src: string, dst: string): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  chmod(p: string, mode: number): Promise<void>;
}

export async function applyEngine(op: Op, ov: EngineOps): Promise<OpResult> {
  try {
    switch (op.kind) {
      case 'write':
        await ov.writeFile(op.path, op.data);
        break;
      case 'append':
        await ov.appendFile(op.path, op.data);
        break;
      case 'truncate':
        try {
          await ov.truncate(op.path, op.size);
        } catch (err) {
          // truncate -c: a missing file is not an error (open without O_CREAT, ENOENT ignored).
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        break;
      case 'mkdir':
        await ov.mkdir(op.path);
        break;
      case 'mkdirp':
        await ov.mkdir(op.path, { recursive: true });
        break;
      case 'unlink':
        await ov.unlink(op.path);
        break;
      case 'rmdir':
        await ov.rmdir(op.path);
        break;
      case 'rmr':
        await ov.rm(op.path, { recursive: true });
        break;
      case 'rename':
        await ov.rename(op.src, op.dst);
        break;
      case 'symlink':
        await ov.symlink(op.target, op.path);
        break;
      case 'chmod':
        await ov.chmod(op.path, op.mode);
        break;
      case 'recreate':
        await ov.rm(op.path, { recursive: true });
        await ov.mkdir(op.path);
        break;
      default:
        throw new Error(`${describeOp(op)} is more than one engine call: run it through the CLI`);
    }
    return { ok: true, codes: [] };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, codes: e.code ? [e.code] : [], detail: e.code ? `${e.code}: ${e.message}` : String(err) };
  }
}

/** Compare a reference result (kernel) with another; returns a reason when they disagree. */
export function compareResults(ref: OpResult, got: OpResult): string | undefined {
  if (got.exit === 2) return `usage error (exit 2): ${got.detail}`;
  if (ref.ok !== got.ok) {
    return ref.ok ? `kernel succeeded, other failed (${got.detail})` : `kernel failed (${ref.detail}), other succeeded`;
  }
  if (!ref.ok && ref.codes.length > 0 && got.codes.length > 0 && !got.codes.some((c) => ref.codes.includes(c))) {
    return `kernel ${ref.codes.join('|')} (${ref.detail}) vs other ${got.codes.join('|')} (${got.detail})`;
  }
  return undefined;
}

const WEIGHTS = {
  write: 15,
  append: 7,
  truncate: 6,
  mkdir: 10,
  mkdirp: 6,
  unlink: 8,
  rmdir: 6,
  rmr: 7,
  rename: 18,
  symlink: 8,
  chmod: 8,
};
/** Building layers: mostly growth, some deletion, so that later layers still merge with earlier ones. */
const GEN_WEIGHTS = {
  write: 18,
  append: 4,
  truncate: 3,
  mkdir: 14,
  mkdirp: 12,
  unlink: 6,
  rmdir: 3,
  rmr: 4,
  rename: 8,
  symlink: 8,
  chmod: 5,
};

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/** A relative symlink target from the directory `dir` to `to` (both overlay paths). */
export function relativeTarget(dir: string, to: string): string {
  const rel = path.posix.relative(dir, to);
  return rel === '' ? '.' : rel;
}

/**
 * Generate one operation from the current merged view (`entries` from a kernel walk).
 * Paths mostly name existing entries so that operations hit lower layers; some name new ones.
 * Operations whose path resolution would leave the mount root through a symlink are avoided.
 */
export function genOp(rng: Rng, entries: MergedEntry[], mountRoot: string, generation = false, cli = false): Op {
  for (let attempt = 0; attempt < 50; attempt++) {
    const op = cli && rng.chance(0.4) ? genCliOp(rng, entries) : genOpOnce(rng, entries, generation);
    const paths = op.kind === 'rename' || op.kind === 'mvInto' ? [op.src, op.dst] : [op.path];
    if (!paths.every((p) => !escapesRoot(mountRoot, p.slice(1), true))) continue;
    if (op.kind === 'rename' && mvQuirk(mountRoot, op.src, op.dst, cli)) continue;
    if (op.kind === 'mvInto' && mvQuirk(mountRoot, op.src, intoDir(mountRoot, op.src, op.dst), true)) continue;
    return op;
  }
  return { kind: 'mkdirp', path: '/' + rng.pick(NAMES) };
}

/**
 * Renames where coreutils mv departs from rename(2) — not overlay semantics, so not generated:
 * - source and destination are the same file (mv refuses, rename(2) succeeds/no-ops), e.g. a
 *   symlink and the file it points to;
 * - a source reached through a symlink, or a destination reached through a symlink inside the
 *   source's tree: mv's EXDEV fallback walks both by path and loses them halfway.
 */
function mvQuirk(root: string, src: string, dst: string, sameFileOk = false): boolean {
  const id = (p: string, follow: boolean): string | undefined => {
    try {
      const st = follow ? fs.statSync(path.join(root, p)) : fs.lstatSync(path.join(root, p));
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  };
  // The CLI refuses these as mv does; the engine's rename is rename(2).
  for (const follow of sameFileOk ? [] : [false, true]) {
    const a = id(src, follow);
    if (a !== undefined && a === id(dst, follow)) return true;
  }
  const viaLink = (p: string, inside: (prefix: string) => boolean): boolean => {
    const comps = p.split('/').filter(Boolean);
    for (let i = 1; i < comps.length; i++) {
      const prefix = '/' + comps.slice(0, i).join('/');
      try {
        if (fs.lstatSync(path.join(root, prefix)).isSymbolicLink() && inside(prefix)) return true;
      } catch {
        return false;
      }
    }
    return false;
  };
  // Source through any symlink; destination through a symlink that is itself being moved.
  return viaLink(src, () => true) || viaLink(dst, (prefix) => prefix.startsWith(src + '/'));
}

function genOpOnce(rng: Rng, entries: MergedEntry[], generation: boolean): Op {
  const dirs = ['/', ...entries.filter((e) => e.type === 'd').map((e) => e.path)];
  const links = entries.filter((e) => e.type === 'l').map((e) => e.path);
  const files = entries.filter((e) => e.type === 'f').map((e) => e.path);
  const all = entries.map((e) => e.path);
  const anyExisting = (): string => (all.length ? rng.pick(all) : newPath());
  const parentDir = (): string => (links.length && rng.chance(0.1) ? rng.pick(links) : rng.pick(dirs));
  const newPath = (): string => join(parentDir(), rng.pick(NAMES));
  const existingOr = (list: string[], p: number): string => (list.length && rng.chance(p) ? rng.pick(list) : rng.chance(0.5) ? anyExisting() : newPath());
  const data = (): string => rng.word() + (rng.chance(0.5) ? '\n' : '');

  if (generation && dirs.length > 1 && rng.chance(0.1)) return { kind: 'recreate', path: rng.pick(dirs.slice(1)) };

  const kind = rng.weighted(generation ? GEN_WEIGHTS : WEIGHTS);
  switch (kind) {
    case 'write':
      return { kind, path: existingOr(files, 0.5), data: data() };
    case 'append':
      return { kind, path: existingOr(files, 0.7), data: data() };
    case 'truncate':
      return { kind, path: existingOr(files, 0.8), size: rng.int(0, 12) };
    case 'mkdir':
      return { kind, path: rng.chance(0.8) ? newPath() : anyExisting() };
    case 'mkdirp':
      return { kind, path: join(newPath(), rng.pick(NAMES)) };
    case 'unlink':
      return { kind, path: existingOr([...files, ...links], 0.7) };
    case 'rmdir':
      return { kind, path: existingOr(dirs.slice(1), 0.8) };
    case 'rmr':
      return { kind, path: existingOr(dirs.slice(1), 0.6) };
    case 'rename': {
      const src = existingOr(dirs.slice(1), 0.5);
      let dst = rng.chance(0.3) ? anyExisting() : newPath();
      for (let i = 0; i < 5 && dst === src; i++) dst = newPath();
      return { kind, src, dst };
    }
    case 'symlink': {
      const p = join(rng.pick(dirs), rng.pick(NAMES)); // a real parent, so the relative target stays inside
      const to = rng.chance(0.8) ? anyExisting() : newPath();
      return { kind, target: relativeTarget(path.posix.dirname(p), to), path: p };
    }
    case 'chmod':
      return { kind, path: anyExisting(), mode: rng.pick(MODES) };
  }
}

/** Where `mv SRC DST` puts SRC: inside DST when DST is a directory (symlinks followed), as mv decides. */
export function intoDir(root: string, src: string, dst: string): string {
  try {
    if (fs.statSync(path.join(root, dst)).isDirectory()) return join(dst, path.posix.basename(src));
  } catch {
    // not there, or not reachable: mv takes DST as the new name
  }
  return dst;
}

/** The commands only the CLI runs (see CliOnlyOp), aimed at what they do differently from one syscall. */
function genCliOp(rng: Rng, entries: MergedEntry[]): Op {
  const dirs = ['/', ...entries.filter((e) => e.type === 'd').map((e) => e.path)];
  const links = entries.filter((e) => e.type === 'l').map((e) => e.path);
  const files = entries.filter((e) => e.type === 'f').map((e) => e.path);
  const all = entries.map((e) => e.path);
  const newPath = (): string => join(rng.pick(dirs), rng.pick(NAMES));
  const any = (): string => (all.length ? rng.pick(all) : newPath());
  const kind = rng.weighted({ truncateCreate: 6, mvInto: 9, mvSame: 3, lnInto: 6, lnForce: 4, rmf: 3, chmodSym: 3 });
  switch (kind) {
    case 'truncateCreate':
      // Missing files, dangling symlinks (their targets get created), and some existing names.
      return { kind, path: links.length && rng.chance(0.4) ? rng.pick(links) : rng.chance(0.7) ? newPath() : any(), size: rng.int(0, 12) };
    case 'mvInto': {
      const src = rng.chance(0.6) && files.length ? rng.pick(files) : any();
      const dst = rng.chance(0.6) ? rng.pick(dirs) : rng.chance(0.5) ? any() : newPath();
      return { kind, src, dst };
    }
    case 'mvSame': {
      // mv SRC SRC, mv SRC DIR where DIR holds SRC, mv LINK TARGET: all "the same file".
      const src = any();
      const r = rng.next();
      if (r < 0.4) return { kind: 'mvInto', src, dst: src };
      if (r < 0.7) return { kind: 'mvInto', src, dst: path.posix.dirname(src) };
      return { kind: 'rename', src, dst: src };
    }
    case 'lnInto': {
      const p = rng.chance(0.7) ? rng.pick(dirs) : rng.chance(0.5) ? any() : newPath();
      const base = dirs.includes(p) ? p : path.posix.dirname(p);
      return { kind, target: relativeTarget(base, rng.chance(0.8) ? any() : newPath()), path: p };
    }
    case 'lnForce': {
      const p = rng.chance(0.7) ? any() : newPath();
      const base = dirs.includes(p) ? p : path.posix.dirname(p);
      return { kind, target: relativeTarget(base, rng.chance(0.8) ? any() : newPath()), path: p };
    }
    case 'chmodSym':
      return { kind, path: any(), mode: rng.pick(['u+x', 'go-w', 'a=rX', '+w', '-x', 'g=u', 'o=', 'u-w,g+w', '=r', 'u=rwx,go=rx', '-r']) };
    default:
      return { kind: 'rmf', path: rng.chance(0.5) ? newPath() : any() };
  }
}
