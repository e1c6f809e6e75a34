/**
 * Stacks: parse them from what users have (directories, mount options, mountinfo,
 * Docker overlay2 layer dirs, `docker inspect` JSON) and validate them the way
 * the kernel's mount would, with messages that name the problem.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createError } from './errors';
import { overlayMounts, overlayStackOf, parseMountinfoEntry, upperInUse } from './mountinfo';
import { detectWhiteoutFormat, whiteoutFormat, type Format } from './formats';
import type { StackSpec, WhiteoutFormat } from './types';

/** A validated stack: absolute real paths, a decided whiteout format. */
export interface ResolvedStack {
  lower: string[];
  upper?: string;
  work?: string;
  whiteouts: WhiteoutFormat;
  userxattr: boolean;
  merged?: string;
  /** The whiteout format as this stack uses it. */
  format: Format;
}

/** Split on `sep` not preceded by a backslash; `\<c>` becomes `<c>`. */
function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      continue;
    }
    if (ch === sep) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

/** Parse a lowerdir value: `a:b`, with `\:` escapes; `::` starts data-only layers, which are ignored. */
function parseLowerdir(value: string): string[] {
  const dataOnly = value.search(/(?<!\\)::/);
  const visible = dataOnly >= 0 ? value.slice(0, dataOnly) : value;
  return splitEscaped(visible, ':').filter((d) => d !== '');
}

/** `lowerdir=a:b,upperdir=u,workdir=w[,userxattr]` as given to mount(8). */
export function parseMountOptions(opts: string): StackSpec {
  const spec: StackSpec = { lower: [] };
  for (const opt of splitEscaped(opts.replace(/\\:/g, '\\\\:'), ',')) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? '' : opt.slice(eq + 1);
    switch (key) {
      case 'lowerdir':
        spec.lower = parseLowerdir(value);
        break;
      case 'lowerdir+':
        spec.lower.push(value.replace(/\\(.)/g, '$1'));
        break;
      case 'upperdir':
        spec.upper = value.replace(/\\(.)/g, '$1');
        break;
      case 'workdir':
        spec.work = value.replace(/\\(.)/g, '$1');
        break;
      case 'userxattr':
        spec.userxattr = true;
        break;
      default:
        break; // redirect_dir, index, metacopy, ... do not change lookup of existing layers
    }
  }
  if (spec.lower.length === 0) throw createError('EINVAL', 'parse', opts, 'mount options name no lowerdir');
  return spec;
}

/** One line of /proc/self/mountinfo for an overlay mount (mountinfo.ts parses it). */
export function parseMountinfoLine(line: string): StackSpec {
  const e = parseMountinfoEntry(line);
  if (!e) throw createError('EINVAL', 'parse', line, 'not a mountinfo line');
  return overlayStackOf(e);
}

/** All overlay mounts from a mountinfo text (default: this process's). */
export function listOverlayMounts(text?: string): StackSpec[] {
  return overlayMounts(text).map((m) => m.spec);
}

/**
 * A Docker overlay2 layer directory (`/var/lib/docker/overlay2/<id>`): `diff/` is the
 * layer, `lower` lists `l/<short>` links uppermost first. A layer with `work/` is a
 * container layer and becomes the upper; otherwise `diff/` is the top-most lower.
 */
export function parseDockerLayerDir(dir: string): StackSpec {
  const root = path.dirname(path.resolve(dir));
  const diff = path.join(dir, 'diff');
  if (!fs.existsSync(diff)) throw createError('ENOENT', 'parse', dir, 'not a Docker overlay2 layer directory (no diff/)');
  let lowers: string[] = [];
  try {
    const text = fs.readFileSync(path.join(dir, 'lower'), 'utf8').trim();
    lowers = text
      ? text.split(':').map((l) => {
          const link = path.join(root, l);
          try {
            return path.resolve(path.dirname(link), fs.readlinkSync(link));
          } catch {
            return link;
          }
        })
      : [];
  } catch {
    /* base layer: no lower file */
  }
  const isContainer = fs.existsSync(path.join(dir, 'work'));
  const spec: StackSpec = isContainer ? { lower: lowers, upper: diff, work: path.join(dir, 'work') } : { lower: [diff, ...lowers] };
  if (spec.lower.length === 0) throw createError('EINVAL', 'parse', dir, 'container layer has no lower layers');
  const merged = path.join(dir, 'merged');
  if (isContainer && isMountPoint(merged)) spec.merged = merged;
  return spec;
}

/** `docker inspect` output (array or object): GraphDriver.Data. */
export function parseDockerInspect(json: string | object): StackSpec {
  let data: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (Array.isArray(data)) data = data[0];
  const gd = (data as { GraphDriver?: { Name?: string; Data?: Record<string, string> } })?.GraphDriver;
  if (!gd?.Data?.LowerDir && !gd?.Data?.UpperDir)
    throw createError('EINVAL', 'parse', 'docker inspect', 'no GraphDriver.Data with LowerDir/UpperDir (is the storage driver overlay2?)');
  const d = gd.Data;
  const spec: StackSpec = { lower: (d.LowerDir ?? '').split(':').filter(Boolean) };
  if (d.UpperDir) {
    spec.upper = d.UpperDir;
    spec.work = d.WorkDir;
  }
  if (spec.lower.length === 0 && spec.upper) {
    spec.lower = [spec.upper];
    delete spec.upper;
    delete spec.work;
  }
  if (d.MergedDir && isMountPoint(d.MergedDir)) spec.merged = d.MergedDir;
  return spec;
}

function isMountPoint(dir: string): boolean {
  try {
    const a = fs.statSync(dir);
    const b = fs.statSync(path.dirname(dir));
    return a.dev !== b.dev;
  } catch {
    return false;
  }
}

/** For permission messages: who we are and what the directory allows. */
function whoAndMode(st: fs.Stats): string {
  return `uid ${process.getuid?.() ?? '?'}; the directory has mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')} and owner uid ${st.uid}`;
}

function checkDir(dir: string, what: string): string {
  if (typeof dir !== 'string' || dir === '') throw createError('EINVAL', 'stack', String(dir), `${what} is not a path`);
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'ENOENT';
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? `cannot be reached by this user (uid ${process.getuid?.() ?? '?'}): a directory above it is not searchable; give it search permission (chmod a+x) or open the stack as a user who can`
          : `cannot be read (${code})`;
    throw createError(code, 'stack', abs, `${what} ${why}`);
  }
  if (!st.isDirectory()) throw createError('ENOTDIR', 'stack', abs, `${what} is not a directory`);
  try {
    fs.accessSync(abs, fs.constants.R_OK | fs.constants.X_OK);
  } catch {
    throw createError(
      'EACCES',
      'stack',
      abs,
      `${what} is not readable by this user (${whoAndMode(st)}): give it read and search permission (chmod a+rx) or open the stack as its owner`,
    );
  }
  return fs.realpathSync(abs);
}

function checkWritable(dir: string, what: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw createError(
      'EACCES',
      'stack',
      dir,
      `${what} is not writable by this user (${whoAndMode(fs.statSync(dir))}): give it write permission or open the stack as its owner`,
    );
  }
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Mount points of the live kernel overlays (in this mount namespace) whose upperdir
 * is `upper`, a real path. Changing such an upper behind the kernel's back is undefined.
 */
export function liveMountsOf(upper: string, mountinfo?: string): string[] {
  return listOverlayMounts(mountinfo)
    .filter((m) => m.upper?.startsWith('/') && realOrSelf(m.upper) === upper)
    .map((m) => m.merged as string);
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : parent + '/');
}

/** Names our engine or the kernel may leave in a work directory. */
const WORK_ALLOWED = new Set(['work', 'index']);

/** Validate a spec; the result has real absolute paths and a decided whiteout format. */
export function resolveStack(spec: StackSpec): ResolvedStack {
  if (!spec || !Array.isArray(spec.lower)) throw createError('EINVAL', 'stack', undefined, 'a stack needs "lower": a list of directories');
  if (spec.lower.length === 0) throw createError('EINVAL', 'stack', undefined, 'a stack needs at least one lower layer');
  const lower = spec.lower.map((d, i) => checkDir(d, `lower layer ${i} (${d})`));
  let upper: string | undefined;
  let work: string | undefined;
  if (spec.upper !== undefined && spec.upper !== null && spec.upper !== '') {
    upper = checkDir(spec.upper, `upper directory (${spec.upper})`);
    checkWritable(upper, 'upper directory');
    const mounts = liveMountsOf(upper);
    if (mounts.length > 0 && !(spec.merged && mounts.includes(realOrSelf(path.resolve(spec.merged))))) {
      throw upperInUse('stack', upper, mounts[0], true, spec.merged);
    }
    if (!spec.work) throw createError('EINVAL', 'stack', upper, 'an upper directory needs a work directory');
    work = checkDir(spec.work, `work directory (${spec.work})`);
    checkWritable(work, 'work directory');
    if (fs.statSync(work).dev !== fs.statSync(upper).dev) {
      throw createError('EXDEV', 'stack', work, 'work directory is not on the same filesystem as the upper directory');
    }
    if (inside(work, upper) || inside(upper, work)) throw createError('EINVAL', 'stack', work, 'work directory and upper directory must be separate subtrees');
    const extra = fs.readdirSync(work).filter((n) => !WORK_ALLOWED.has(n));
    if (extra.length > 0)
      throw createError(
        'ENOTEMPTY',
        'stack',
        work,
        `work directory is not empty (contains ${extra
          .slice(0, 3)
          .map((n) => JSON.stringify(n))
          .join(', ')})`,
      );
  } else if (spec.work) {
    throw createError('EINVAL', 'stack', spec.work, 'a work directory without an upper directory');
  }
  const all = upper ? [upper, ...lower] : lower;
  const names = upper ? ['upper directory', ...lower.map((_, i) => `lower layer ${i}`)] : lower.map((_, i) => `lower layer ${i}`);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (all[i] === all[j]) throw createError('EINVAL', 'stack', all[i], `the same directory is used twice (${names[i]} and ${names[j]})`);
      if (upper && i === 0 && (inside(all[j], upper) || inside(upper, all[j]))) {
        throw createError('EINVAL', 'stack', upper, `upper directory and ${names[j]} overlap (${all[j]})`);
      }
    }
    if (work && inside(work, all[i]) && i > 0) throw createError('EINVAL', 'stack', work, `work directory is inside ${names[i]}`);
  }
  const requested = spec.whiteouts ?? 'auto';
  const whiteouts = requested === 'auto' ? detectWhiteoutFormat(all) : requested;
  const userxattr = spec.userxattr === true;
  return { lower, upper, work, whiteouts, userxattr, merged: spec.merged, format: whiteoutFormat(whiteouts, { userxattr }) };
}
