/**
 * Canonical text dumps of a tree, one line per entry, so two trees compare with a line diff.
 * Merged views (kernel mount, fuse mount, engine) and raw upper directories have their own dumps.
 * Files carry their mode (setuid/setgid included), link count and the xattrs a write may drop
 * or must keep (security.capability, user.*). Deliberately ignored: times, inode numbers,
 * directory sizes and link counts, and owners unless asked for (dumpLayer's `owners`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface XattrLib {
  getAttributeSync(path: string, name: string): Buffer | null | undefined;
  setAttributeSync(path: string, name: string, value: Buffer): void;
  listAttributesSync(path: string): string[];
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const xattr = require('@napi-rs/xattr') as XattrLib;

export const CAPABILITY_XATTR = 'security.capability';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
export const WHITEOUT_XATTR = 'trusted.overlay.whiteout';

function getXattr(p: string, name: string): string | undefined {
  try {
    const v = xattr.getAttributeSync(p, name);
    return v == null ? undefined : v.toString('latin1');
  } catch {
    return undefined;
  }
}

/**
 * The xattrs of a file that writes must drop or keep, as ` name=value` (values in hex): file
 * capabilities and user.* ones (not user.overlay.*, the overlay's own). Empty when none.
 */
export function privilegeXattrs(p: string): string {
  let names: string[];
  try {
    names = xattr.listAttributesSync(p);
  } catch {
    return '';
  }
  const shown = names.filter((n) => n === CAPABILITY_XATTR || (n.startsWith('user.') && !n.startsWith('user.overlay.'))).sort();
  return shown.map((n) => ` ${n}=${xattr.getAttributeSync(p, n)?.toString('hex') ?? '?'}`).join('');
}

export function setOpaque(dir: string): void {
  xattr.setAttributeSync(dir, OPAQUE_XATTR, Buffer.from('y'));
}

export function typeLetter(st: fs.Stats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  return '?';
}

const oct = (m: number): string => (m & 0o7777).toString(8).padStart(4, '0');
const show = (b: Buffer): string => JSON.stringify(b.toString('latin1'));

/**
 * One line describing a merged-view entry. `follow` is what stat() through a symlink gives;
 * `extra` is a file's link count and xattrs (fileExtra).
 */
export function mergedLine(p: string, type: string, mode: number, size: number, content?: Buffer, target?: string, follow?: string, extra = ''): string {
  switch (type) {
    case 'd':
      return `${p} d ${oct(mode)}`;
    case 'f':
      return `${p} f ${oct(mode)} ${size} ${content ? show(content) : '?'}${extra}`;
    case 'l':
      return `${p} l -> ${target} [${follow ?? '?'}]`;
    default:
      return `${p} ${type} ${oct(mode)}`;
  }
}

/**
 * Resolve `rel` (relative to `root`, no leading slash) on a live mount component by component,
 * following symlinks, and tell whether resolution would leave `root` through `..`. Kernel
 * resolution of such a path walks out of the mount; the engine clamps at its root. We avoid those.
 */
export function escapesRoot(root: string, rel: string, followLast: boolean): boolean {
  let budget = 40;
  const walk = (stack: string[], parts: string[]): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const c = parts[i];
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (stack.length === 0) return true;
        stack.pop();
        continue;
      }
      const here = path.join(root, ...stack, c);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(here);
      } catch {
        return false; // missing: the rest fails lexically before leaving the root
      }
      const last = i === parts.length - 1;
      if (st.isSymbolicLink() && (!last || followLast)) {
        if (--budget < 0) return false; // ELOOP on both sides
        const t = fs.readlinkSync(here);
        if (t.startsWith('/')) return true;
        if (walk(stack, t.split('/'))) return true;
      } else {
        stack.push(c);
      }
    }
    return false;
  };
  return walk([], rel.split('/'));
}

/** What stat() through `p` gives on a live mount: a type letter or an errno code. */
function followOnMount(root: string, p: string): string {
  if (escapesRoot(root, p.slice(1), true)) return 'escapes';
  try {
    return typeLetter(fs.statSync(path.join(root, p)));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'ERR';
  }
}

export interface MergedEntry {
  path: string;
  type: string;
}

/** Walk a live overlay mount (kernel or fuse) through the VFS. */
export function dumpMount(root: string): { lines: string[]; entries: MergedEntry[] } {
  const lines: string[] = [];
  const entries: MergedEntry[] = [];
  const visit = (p: string): void => {
    const names = fs.readdirSync(path.join(root, p)).sort();
    for (const name of names) {
      const cp = p === '/' ? `/${name}` : `${p}/${name}`;
      const real = path.join(root, cp);
      const st = fs.lstatSync(real);
      const t = typeLetter(st);
      entries.push({ path: cp, type: t });
      if (t === 'f') lines.push(mergedLine(cp, t, st.mode, st.size, fs.readFileSync(real), undefined, undefined, fileExtra(real, st.nlink)));
      else if (t === 'l') lines.push(mergedLine(cp, t, st.mode, st.size, undefined, fs.readlinkSync(real), followOnMount(root, cp)));
      else lines.push(mergedLine(cp, t, st.mode, st.size));
      if (t === 'd') visit(cp);
    }
  };
  lines.push(mergedLine('/', 'd', fs.lstatSync(root).mode, 0));
  visit('/');
  return { lines, entries };
}

/** A file's link count and its xattrs that writes drop or keep, for a dump line. */
export function fileExtra(real: string, nlink: number): string {
  return ` nlink=${nlink}${privilegeXattrs(real)}`;
}

/** The part of the engine API the dumps use. */
export interface EngineView {
  lstat(p: string): Promise<{ type: string; size: number; mode: number; nlink: number; realPath: string }>;
  stat(p: string): Promise<{ type: string }>;
  readdir(p: string): Promise<{ name: string; type: string }[]>;
  readFile(p: string): Promise<Buffer>;
  readlink(p: string): Promise<string>;
}

const errCode = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? `THROW(${String(err)})`;

/**
 * Walk the engine's merged view. Symlink follow results are taken from the engine, except
 * where the kernel mount shows that resolution escapes the root (`escapes` is then copied).
 */
export async function dumpEngine(ov: EngineView, kernelRoot?: string): Promise<string[]> {
  const lines: string[] = [];
  const visit = async (p: string): Promise<void> => {
    let list: { name: string; type: string }[];
    try {
      list = await ov.readdir(p);
    } catch (err) {
      lines.push(`${p} readdir failed: ${errCode(err)}`);
      return;
    }
    const sorted = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { name, type: dtype } of sorted) {
      const cp = p === '/' ? `/${name}` : `${p}/${name}`;
      let st: { type: string; size: number; mode: number; nlink: number; realPath: string };
      try {
        st = await ov.lstat(cp);
      } catch (err) {
        lines.push(`${cp} listed but lstat failed: ${errCode(err)}`);
        continue;
      }
      if (dtype !== st.type) lines.push(`${cp} readdir type ${dtype} != lstat type ${st.type}`);
      try {
        if (st.type === 'f') {
          // The engine has no xattr call: a file's xattrs are those of the real file that serves it.
          lines.push(mergedLine(cp, 'f', st.mode, st.size, await ov.readFile(cp), undefined, undefined, fileExtra(st.realPath, st.nlink)));
        } else if (st.type === 'l') {
          let follow: string;
          if (kernelRoot && fs.existsSync(kernelRoot) && escapesRoot(kernelRoot, cp.slice(1), true)) follow = 'escapes';
          else {
            try {
              follow = (await ov.stat(cp)).type;
            } catch (err) {
              follow = errCode(err);
            }
          }
          lines.push(mergedLine(cp, 'l', st.mode, st.size, undefined, await ov.readlink(cp), follow));
        } else {
          lines.push(mergedLine(cp, st.type, st.mode, st.size));
        }
      } catch (err) {
        lines.push(`${cp} read failed: ${errCode(err)}`);
      }
      if (st.type === 'd') await visit(cp);
    }
  };
  try {
    const root = await ov.lstat('/');
    lines.push(mergedLine('/', root.type, root.mode, 0));
  } catch (err) {
    lines.push(`/ lstat failed: ${errCode(err)}`);
  }
  await visit('/');
  return lines;
}

/**
 * Raw dump of an upper (or any layer) directory: kernel whiteouts as `w` (char 0/0), other
 * devices with their rdev, directories with their opaque xattr, files with contents, link
 * count and xattrs (fileExtra). With `owners`, every line but whiteouts ends in uid:gid.
 */
export function dumpLayer(root: string, opts: { owners?: boolean } = {}): string[] {
  const lines: string[] = [];
  const visit = (p: string): void => {
    const names = fs.readdirSync(path.join(root, p)).sort();
    for (const name of names) {
      const cp = p === '/' ? `/${name}` : `${p}/${name}`;
      const real = path.join(root, cp);
      const st = fs.lstatSync(real);
      const t = typeLetter(st);
      const owner = opts.owners ? ` ${st.uid}:${st.gid}` : '';
      if (t === 'c' && st.rdev === 0) lines.push(`${cp} whiteout`);
      else if (t === 'c' || t === 'b') lines.push(`${cp} ${t} ${st.rdev} ${oct(st.mode)}${owner}`);
      else if (t === 'd') {
        const opaque = getXattr(real, OPAQUE_XATTR);
        lines.push(`${cp} d ${oct(st.mode)}${opaque !== undefined ? ` opaque=${JSON.stringify(opaque)}` : ''}${owner}`);
        visit(cp);
      } else if (t === 'f' && name.startsWith('.wh.') && st.size === 0) {
        lines.push(`${cp} oci-marker`); // mode of .wh. markers carries no meaning
      } else if (t === 'f') {
        const wh = getXattr(real, WHITEOUT_XATTR) !== undefined ? ' xattr-whiteout' : '';
        lines.push(`${cp} f ${oct(st.mode)} ${st.size} ${show(fs.readFileSync(real))}${wh}${fileExtra(real, st.nlink)}${owner}`);
      } else if (t === 'l') lines.push(`${cp} l -> ${fs.readlinkSync(real)}${owner}`);
      else lines.push(`${cp} ${t} ${oct(st.mode)}${owner}`);
    }
  };
  const rootOpaque = getXattr(root, OPAQUE_XATTR);
  lines.push(`/ d ${oct(fs.lstatSync(root).mode)}${rootOpaque !== undefined ? ` opaque=${JSON.stringify(rootOpaque)}` : ''}`);
  visit('/');
  return lines;
}

/** Unified-ish diff of two sorted line lists; empty when equal. */
export function diffLines(a: string[], b: string[], aName: string, bName: string): string[] {
  const sa = new Set(a);
  const sb = new Set(b);
  const out: string[] = [];
  for (const l of a) if (!sb.has(l)) out.push(`- ${aName}: ${l}`);
  for (const l of b) if (!sa.has(l)) out.push(`+ ${bName}: ${l}`);
  return out;
}
