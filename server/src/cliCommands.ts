/**
 * What each overlayws command does. The write commands are named after coreutils and act as
 * coreutils does on a kernel overlay mount (GNU coreutils 9.1 checked by test/kernel): `mv` into
 * a directory and its same-file refusal, `ln -s` into a directory, `truncate` creating a missing
 * file (through a dangling symlink too), `rm -f`, ... — built from single calls (cliWrites.ts)
 * that the engine or a live kernel mount makes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { compareNames, createError, encodePath, isErrno, type Overlay, type OverlayStat } from './overlay';
import { splitRequestPath } from './overlay/paths';
import { exportLayer } from './overlay/oci';
import { UsageError } from './cliArgs';
import type { Writes } from './cliWrites';
import { holdersCommand } from './cliHolders';

type Values = Record<string, string | boolean | string[] | undefined>;

/** Byte order of names as they are on disk (a name that is not UTF-8 prints with U+F780–U+F7FF chars, see overlay/names.ts). */
const bytewise = compareNames;

async function tree(ov: Overlay, root: string, out: (line: string) => void): Promise<void> {
  const lines: { path: string; line: string }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await ov.readdir(dir)) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const st = await ov.lstat(p);
      let obj: Record<string, unknown>;
      if (st.type === 'f')
        obj = {
          path: p,
          type: 'f',
          mode: st.mode,
          size: st.size,
          sha256: createHash('sha256')
            .update(await ov.readFile(p))
            .digest('hex'),
        };
      else if (st.type === 'd') obj = { path: p, type: 'd', mode: st.mode };
      else if (st.type === 'l') obj = { path: p, type: 'l', target: await ov.readlink(p) };
      else obj = { path: p, type: st.type, mode: st.mode };
      lines.push({ path: p, line: JSON.stringify(obj) });
      if (st.type === 'd') await walk(p);
    }
  };
  await walk(root);
  lines.sort((a, b) => bytewise(a.path, b.path));
  for (const l of lines) out(l.line);
}

/** Is `p` a directory, for mv's and ln's choice of going inside it? A symlink loop is not. */
async function isDirectory(ov: Overlay, p: string, follow: boolean): Promise<boolean> {
  try {
    return (follow ? await ov.stat(p) : await ov.lstat(p)).type === 'd';
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return false;
    throw err;
  }
}

/** lstat or stat of `p`, undefined where the name is not there (ENOENT, or ENOTDIR on the way). */
async function statOr(ov: Overlay, p: string, follow: boolean): Promise<OverlayStat | undefined> {
  try {
    return follow ? await ov.stat(p) : await ov.lstat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** The file behind an entry, as st_dev:st_ino tell it (hard links share it). */
function identity(st: OverlayStat): string {
  const real = fs.lstatSync(encodePath(st.realPath));
  return `${real.dev}:${real.ino}`;
}

/** Last component of `p`, trailing slashes ignored ('' for the root). */
function basename(p: string): string {
  const comps = p.split('/').filter((c) => c !== '');
  return comps[comps.length - 1] ?? '';
}

function inside(dir: string, name: string): string {
  return (dir.endsWith('/') ? dir : dir + '/') + name;
}

/**
 * Where a write through `p` lands: `p` with every symlink followed inside the overlay, also a
 * final dangling one (open(O_CREAT) creates its target). Errors still name `p`.
 */
function followed(ov: Overlay, p: string, syscall: string): string {
  return ov.view.resolve(splitRequestPath(p, syscall), true, syscall, p).path;
}

/** `p` with its directory resolved (symlinks followed inside the overlay), the last name as it is. */
function inParent(ov: Overlay, p: string, syscall: string): string {
  const comps = splitRequestPath(p, syscall);
  if (comps.length === 0) return p;
  return inside(ov.view.resolve(comps.slice(0, -1), true, syscall, p).path, comps[comps.length - 1]);
}

/**
 * A PATH written with a trailing slash names a directory, as the kernel reads it: a non-directory
 * there is ENOTDIR. Returns whether PATH is a symlink that the slash follows to a directory (the
 * engine, which ignores the slash, would act on the symlink itself).
 */
async function slashed(ov: Overlay, p: string, syscall: string): Promise<boolean> {
  if (!p.endsWith('/') || splitRequestPath(p, syscall).length === 0) return false;
  const st = await statOr(ov, p, true);
  if (!st) return false;
  if (st.type !== 'd') throw createError('ENOTDIR', syscall, p);
  return (await ov.lstat(p)).type === 'l';
}

/** Run `fn`; an error it throws names `p` (what the user typed) instead of the resolved path. */
async function naming<T>(p: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err && typeof err === 'object' && 'path' in err) (err as { path: string }).path = p;
    throw err;
  }
}

const UNITS = 'KMGTPE';

/** coreutils truncate's SIZE: [+-<>/%]N[K|KB|KiB|M|...]; applied to the current size. */
export function parseSize(spec: string): (current: number) => number {
  const m = /^([+\-<>/%]?)(\d+)(?:([kKmMgGtTpPeE])(iB|B)?)?$/.exec(spec);
  if (!m) throw new UsageError(`truncate: invalid size ${JSON.stringify(spec)} (bytes, with an optional K, M, G, T, P, E suffix; KB = 1000)`);
  const unit = m[3] ? (m[4] === 'B' ? 1000 : 1024) ** (UNITS.indexOf(m[3].toUpperCase()) + 1) : 1;
  const n = Number(m[2]) * unit;
  if (!Number.isSafeInteger(n)) throw createError('EFBIG', 'truncate', undefined, `size ${spec} is too large`);
  switch (m[1]) {
    case '+':
      return (c) => c + n;
    case '-':
      return (c) => Math.max(0, c - n);
    case '<':
      return (c) => Math.min(c, n);
    case '>':
      return (c) => Math.max(c, n);
    case '/':
    case '%':
      if (n === 0) throw new UsageError('truncate: division by zero');
      return m[1] === '/' ? (c) => Math.floor(c / n) * n : (c) => Math.ceil(c / n) * n;
    default:
      return () => n;
  }
}

/** truncate [-c] -s SIZE PATH: a missing file is created (through a dangling symlink, its target) unless -c. */
async function truncate(ov: Overlay, w: Writes, p: string, sizeSpec: string, noCreate: boolean): Promise<void> {
  const size = parseSize(sizeSpec);
  const st = await naming(p, async () => ov.stat(p)).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  });
  // open(O_CREAT) of a name with a trailing slash, or of a directory: EISDIR.
  if (st?.type === 'd' || (st && p.endsWith('/'))) throw createError('EISDIR', 'open', p);
  if (st) return naming(p, () => w.truncate(followed(ov, p, 'open'), size(st.size)));
  if (noCreate) return;
  // open(O_CREAT) of a name with a trailing slash: the kernel refuses to make it a file.
  if (p.endsWith('/')) throw createError('EISDIR', 'open', p);
  await naming(p, async () => {
    const target = followed(ov, p, 'open');
    try {
      await w.createFile(target);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const n = size(0);
    if (n > 0) await w.truncate(target, n);
  });
}

/**
 * mv [-T] [-n] SRC DST: into DST when it is a directory (symlinks followed), else to DST; refuses
 * to move a file onto itself (the same name, a hard link of it, or a symlink onto its target).
 */
async function mv(ov: Overlay, w: Writes, src: string, dst: string, o: Values): Promise<void> {
  if (await slashed(ov, src, 'rename')) throw createError('ENOTDIR', 'rename', src, undefined, dst);
  await slashed(ov, dst, 'rename');
  const s = await ov.lstat(src);
  let target = dst;
  if (!o['no-target-directory'] && (await isDirectory(ov, dst, true))) target = inside(dst, basename(src));
  const d = await statOr(ov, target, false);
  if (d) {
    const same = identity(s) === identity(d) || (d.type !== 'l' && s.type === 'l' && identity(await ov.stat(src).catch(() => s)) === identity(d));
    if (same) throw createError('EINVAL', 'rename', src, `'${src}' and '${target}' are the same file`);
    if (o['no-clobber']) return;
    // mv checks the types itself before rename(2) (which would first see DST inside SRC).
    if (s.type === 'd' && d.type !== 'd') throw createError('ENOTDIR', 'rename', src, `cannot overwrite non-directory '${target}' with directory`);
    if (s.type !== 'd' && d.type === 'd') throw createError('EISDIR', 'rename', src, `cannot overwrite directory '${target}' with non-directory`);
  }
  // rename(2) of a non-directory to a name with a trailing slash: the name must be a directory.
  if (!d && target.endsWith('/') && s.type !== 'd') throw createError('ENOTDIR', 'rename', src, undefined, target);
  // mv SRC DST without -T, DST new: after EXDEV coreutils copies what is below (with -T, or
  // into a directory, it renames entry by entry; the upper shows it in opaque markers).
  await w.rename(src, target, !o['no-target-directory'] && target === dst && !d);
}

/** ln -s [-f] [-T] [-n] TARGET PATH: inside PATH when it is a directory (a symlink to one too, unless -n). */
async function ln(ov: Overlay, w: Writes, target: string, p: string, o: Values): Promise<void> {
  if (!o.symbolic) throw new UsageError('ln: overlayws makes symbolic links only: ln -s TARGET PATH');
  let dest = p;
  if (!o['no-target-directory'] && (await isDirectory(ov, p, !o['no-dereference']))) {
    const name = basename(target);
    dest = inside(p, name);
    // TARGET '/' names nothing to create; '.' and '..' name the directory itself or its parent.
    if (name === '') throw createError('ENOENT', 'symlink', dest);
    if (name === '.' || name === '..')
      throw o.force ? createError('EISDIR', 'symlink', dest, 'cannot overwrite directory') : createError('EEXIST', 'symlink', dest);
  }
  const d = await statOr(ov, dest, false);
  if (dest.endsWith('/') && d?.type !== 'd') throw createError(d ? 'EEXIST' : 'ENOENT', 'symlink', dest);
  if (d && o.force) {
    if (d.type === 'd') throw createError('EISDIR', 'symlink', dest, 'cannot overwrite directory');
    // ln -f refuses to replace the very file TARGET names (from the overlay root, as from ln's
    // working directory): `ln -sf f f` would lose it.
    const source = await ov.stat(target.startsWith('/') ? target : '/' + target).catch(() => undefined);
    if (source && identity(source) === identity(d)) throw createError('EINVAL', 'symlink', dest, `'${target}' and '${dest}' are the same file`);
    // ln makes the new link beside the old one and renames it over: the name is looked up
    // once, in its directory as it was (DEST may lead through the very symlink it replaces).
    const at = inParent(ov, dest, 'symlink');
    return naming(dest, async () => {
      await w.rm(at, false);
      await w.symlink(target, at);
    });
  }
  await w.symlink(target, dest);
}

/** rm [-r] [-f] [-d] PATH: -f ignores a missing PATH, -d removes an empty directory. */
async function rm(ov: Overlay, w: Writes, p: string, o: Values): Promise<void> {
  const st = await slashed(ov, p, 'unlink')
    .then(async (throughLink) => {
      if (!throughLink) return ov.lstat(p);
      // `rm LINK/` for a symlink to a directory: that directory (rm -r would empty it, then fail
      // to remove LINK/ with ENOTDIR; overlayws stops before emptying it).
      if (o.recursive || o.R) throw createError('ENOTDIR', 'rmdir', p);
      if (o.dir) throw createError((await ov.readdir(p)).length > 0 ? 'ENOTEMPTY' : 'ENOTDIR', 'rmdir', p);
      throw createError('EISDIR', 'unlink', p);
    })
    .catch((err: unknown) => {
      if (o.force && isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    });
  if (!st) return;
  if (st.type !== 'd') return w.rm(p, false);
  if (o.recursive || o.R) return w.rm(p, true);
  if (o.dir) return w.rmdir(p);
  throw createError('EISDIR', 'unlink', p, 'is a directory (rm -r removes it and everything below)');
}

const SUID = 0o4000;
const SGID = 0o2000;
const SVTX = 0o1000;
const RWX = 0o777;
const WHO: Record<string, number> = { u: SUID | 0o700, g: SGID | 0o070, o: SVTX | 0o007, a: 0o7777 };

/**
 * chmod's MODE applied to a file's mode, as GNU chmod (gnulib modechange.c) does it: octal
 * (a directory keeps its set-user/group-ID bits unless the mode sets them or has 5 digits) or
 * symbolic clauses `[ugoa]*[-+=][rwxXst]*|[ugo]`, comma-separated; without `ugoa`, the umask's
 * bits are left alone.
 */
export function applyMode(spec: string, old: number, isDir: boolean, umask: number): number {
  const bad = (): never => {
    throw new UsageError(`chmod: invalid mode ${JSON.stringify(spec)} (octal like 644, or symbolic like u+x,go-w)`);
  };
  if (/^[0-7]+$/.test(spec)) {
    const mode = parseInt(spec, 8);
    if (mode > 0o7777) bad();
    const mentioned = spec.length < 5 ? (mode & (SUID | SGID)) | SVTX | RWX : 0o7777;
    const omit = (isDir ? SUID | SGID : 0) & ~mentioned;
    return (old & omit) | (mode & ~omit);
  }
  let mode = old & 0o7777;
  for (const clause of spec.split(',')) {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(clause);
    if (!m) bad();
    const who = [...m![1]].reduce((acc, c) => acc | WHO[c], 0);
    for (const [, op, perms] of m![2].matchAll(/([-+=])([ugo]|[rwxXst]*)/g)) {
      const copy = /^[ugo]$/.test(perms);
      let value = copy ? { u: 0o700, g: 0o070, o: 0o007 }[perms as 'u' | 'g' | 'o'] : 0;
      if (!copy) for (const c of perms) value |= c === 'r' ? 0o444 : c === 'w' ? 0o222 : c === 'x' ? 0o111 : c === 's' ? SUID | SGID : c === 't' ? SVTX : 0;
      const mentioned = who ? who & value : value;
      const omit = (isDir ? SUID | SGID : 0) & ~mentioned;
      if (copy) {
        // The bits of that class, given to every class.
        value &= mode;
        value = (value & 0o444 ? 0o444 : 0) | (value & 0o222 ? 0o222 : 0) | (value & 0o111 ? 0o111 : 0);
      }
      if (perms.includes('X') && (isDir || mode & 0o111)) value |= 0o111;
      value &= (who ? who : ~umask) & ~omit;
      if (op === '=') mode = (mode & ((who ? ~who : 0) | omit)) | value;
      else if (op === '+') mode |= value;
      else mode &= ~value;
    }
  }
  return mode & 0o7777;
}

/** chmod MODE PATH (symlinks followed, as chmod does). */
async function chmod(ov: Overlay, w: Writes, spec: string, p: string): Promise<void> {
  // A malformed MODE is a usage error before anything is looked up.
  applyMode(spec, 0, false, 0);
  const st = await ov.stat(p);
  await w.chmod(p, applyMode(spec, st.mode, st.type === 'd', process.umask()));
}

/** What some commands need beyond the overlay: the merged directory of its kernel mount, a stderr line. */
export interface CommandContext {
  merged?: string;
  note?: (line: string) => void;
}

export async function runCommand(
  ov: Overlay,
  w: Writes,
  command: string,
  args: string[],
  o: Values,
  out: (s: string | Buffer) => void,
  stdin: () => Promise<Buffer>,
  ctx: CommandContext = {},
): Promise<void> {
  const line = (s: string): void => out(s + '\n');
  // PATH/ must be a directory; through a symlink, the directory it leads to (slashed()).
  const looked = ['ls', 'cat', 'stat', 'resolve', 'tree', 'diff', 'chmod', 'holders'].includes(command) ? args[command === 'chmod' ? 1 : 0] : undefined;
  const throughLink = looked !== undefined && (await slashed(ov, looked, command));
  switch (command) {
    case 'ls': {
      const st = await ov.stat(args[0]);
      if (st.type !== 'd') {
        line(`${st.type} ${basename(args[0]) || '/'}`);
        return;
      }
      for (const e of (await ov.readdir(args[0])).sort((a, b) => bytewise(a.name, b.name))) line(`${e.type} ${e.name}`);
      return;
    }
    case 'cat':
      out(await ov.readFile(args[0]));
      return;
    case 'stat': {
      const st = throughLink ? await ov.stat(args[0]) : await ov.lstat(args[0]);
      line(JSON.stringify({ type: st.type, size: st.size, mode: st.mode, mtimeMs: st.mtimeMs, layer: st.layer }));
      return;
    }
    case 'tree':
      await tree(ov, args[0] ?? '/', line);
      return;
    case 'resolve': {
      const r = await ov.resolve(args[0]);
      line(JSON.stringify({ path: r.path, layer: r.layer, realPath: r.realPath, type: r.type }));
      return;
    }
    case 'history':
      for (const h of await ov.history(args[0])) line(JSON.stringify(h));
      return;
    case 'diff': {
      const under = args[0] === undefined ? '/' : (await ov.lstat(args[0]), '/' + splitRequestPath(args[0], 'diff').join('/'));
      for (const c of await ov.diff()) {
        if (under !== '/' && c.path !== under && !c.path.startsWith(under + '/')) continue;
        line(o.json ? JSON.stringify(c) : `${c.kind} ${c.path}`);
      }
      return;
    }
    case 'write': {
      const data = await stdin();
      if (args[0].endsWith('/') && (await statOr(ov, args[0], true))?.type !== 'd') throw createError('EISDIR', 'open', args[0]);
      return naming(args[0], () => w.writeFile(followed(ov, args[0], 'open'), data));
    }
    case 'append': {
      const data = await stdin();
      if (args[0].endsWith('/') && (await statOr(ov, args[0], true))?.type !== 'd') throw createError('EISDIR', 'open', args[0]);
      return naming(args[0], () => w.appendFile(followed(ov, args[0], 'open'), data));
    }
    case 'truncate':
      return o.size === undefined ? truncate(ov, w, args[0], args[1], !!o['no-create']) : truncate(ov, w, args[0], o.size as string, !!o['no-create']);
    case 'mkdir':
      return w.mkdir(args[0], !!o.parents);
    case 'rm':
      return rm(ov, w, args[0], o);
    case 'rmdir':
      // rmdir LINK/: the kernel does not follow the symlink ("Symbolic link not followed").
      if (await slashed(ov, args[0], 'rmdir')) throw createError('ENOTDIR', 'rmdir', args[0], 'symbolic link not followed');
      return w.rmdir(args[0]);
    case 'mv':
      return mv(ov, w, args[0], args[1], o);
    case 'ln':
      return ln(ov, w, args[0], args[1], o);
    case 'chmod':
      return chmod(ov, w, args[0], args[1]);
    case 'export':
      await exportLayer(ov, args[0]);
      return;
    case 'holders': {
      // The processes that read the file: symlinks followed, as cat follows them.
      if ((await ov.stat(args[0])).type === 'd') throw createError('EISDIR', 'holders', args[0], 'holders names the processes that read a file');
      const target = naming(args[0], async () => followed(ov, args[0], 'open'));
      return holdersCommand(ov, await target, ctx.merged, line, ctx.note ?? (() => undefined));
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}
