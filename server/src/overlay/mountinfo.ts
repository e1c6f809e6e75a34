/**
 * /proc/self/mountinfo: the one parser of its lines (proc(5)). Fields are separated by
 * spaces; space, tab, newline and backslash inside a field are written as octal escapes
 * (`\040`, `\011`, `\012`, `\134`). For an overlay the super options carry the layers,
 * where a colon inside a lowerdir path is `\:` (escaped once more for mountinfo).
 */
import * as fs from 'node:fs';
import { createError, type OverlayError } from './errors';
import type { StackSpec } from './types';

export interface MountinfoEntry {
  id: number;
  parent: number;
  /** "major:minor" of the filesystem. */
  majmin: string;
  /** Root of the mount within its filesystem. */
  root: string;
  /** Where it is mounted. */
  mountPoint: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** `\NNN` octal escapes of mountinfo, decoded. */
export function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** One line, or undefined when it is not a mountinfo line. */
export function parseMountinfoEntry(line: string): MountinfoEntry | undefined {
  const fields = line.trim().split(' ');
  const dash = fields.indexOf('-', 6);
  if (dash < 0 || fields.length < dash + 4) return undefined;
  return {
    id: Number(fields[0]),
    parent: Number(fields[1]),
    majmin: fields[2],
    root: unescapeMountinfo(fields[3]),
    mountPoint: unescapeMountinfo(fields[4]),
    options: fields[5],
    fstype: fields[dash + 1],
    source: unescapeMountinfo(fields[dash + 2]),
    superOptions: fields[dash + 3],
  };
}

/** Every mount of a mountinfo text (default: this process's), in the file's order. */
export function readMountinfo(text?: string): MountinfoEntry[] {
  let content = text;
  if (content === undefined) {
    try {
      content = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return [];
    }
  }
  const out: MountinfoEntry[] = [];
  for (const line of content.split('\n')) {
    const e = line ? parseMountinfoEntry(line) : undefined;
    if (e) out.push(e);
  }
  return out;
}

/** The stack of an overlay mount: its layers from the super options, `merged` its mount point. */
export function overlayStackOf(e: MountinfoEntry): StackSpec {
  if (e.fstype !== 'overlay') throw createError('EINVAL', 'parse', e.mountPoint, `not an overlay mount (type ${e.fstype})`);
  const spec: StackSpec = { lower: [] };
  for (const opt of e.superOptions.split(',')) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? '' : opt.slice(eq + 1);
    if (key === 'lowerdir') {
      // `::` starts data-only layers (invisible to lookup); `\:` is a colon inside a path.
      // A colon inside a path is `\:` in the options, which mountinfo shows as `\134:` (some
      // tools write `\072`); `::` starts data-only layers, invisible to lookup.
      const raw = value.replace(/\\134:/g, '\u0000');
      const dataOnly = raw.indexOf('::');
      spec.lower = (dataOnly >= 0 ? raw.slice(0, dataOnly) : raw)
        .split(':')
        .filter(Boolean)
        .map((d) => unescapeMountinfo(d).split('\u0000').join(':'));
    } else if (key === 'lowerdir+') spec.lower.push(unescapeMountinfo(value));
    else if (key === 'upperdir') spec.upper = unescapeMountinfo(value);
    else if (key === 'workdir') spec.work = unescapeMountinfo(value);
    else if (key === 'userxattr') spec.userxattr = true;
  }
  if (spec.lower.length === 0) throw createError('EINVAL', 'parse', e.mountPoint, 'overlay mount shows no lowerdir');
  spec.merged = e.mountPoint;
  return spec;
}

/** st_dev as glibc's makedev builds it from "major:minor" (mountinfo: decimal; /proc/PID/maps: hex, radix 16). */
export function makedev(majmin: string, radix = 10): number {
  const [maj, min] = majmin.split(':').map((n) => parseInt(n, radix));
  return ((maj & 0xfff) << 8) + (min & 0xff) + (min & ~0xff) * 4096 + (maj & ~0xfff) * 2 ** 32;
}

/** An overlay mount: its stack and the device its merged directory shows. */
export interface OverlayMount {
  spec: StackSpec & { merged: string };
  dev: number;
}

/** Every kernel overlay mount of a mountinfo text (default: this process's). */
export function overlayMounts(text?: string): OverlayMount[] {
  const out: OverlayMount[] = [];
  for (const e of readMountinfo(text)) {
    if (e.fstype !== 'overlay') continue;
    try {
      out.push({ spec: overlayStackOf(e) as StackSpec & { merged: string }, dev: makedev(e.majmin) });
    } catch {
      /* no layers shown: skip */
    }
  }
  return out;
}

/**
 * The one refusal of a write into an upper directory that a mounted overlay uses: EBUSY,
 * naming the mount. `reachable` false: its merged directory cannot be reached from here, so
 * nothing can be routed through it.
 */
export function upperInUse(syscall: string, upper: string, merged: string | undefined, reachable: boolean, given?: string): OverlayError {
  const at = (merged ? ` mounted at ${merged}` : '') + (given ? `, not at ${given} (the "merged" given)` : '');
  const how = reachable
    ? `Write through ${merged ?? 'the mount'} instead (a program that routes its writes there, as the server and overlayws do, passes "merged": "${merged ?? ''}"), or unmount it first`
    : 'Its merged directory is not reachable from here (another mount namespace, or covered by another mount), so writes are refused: write through the mount, or unmount it first';
  return createError('EBUSY', syscall, upper, `the upper directory belongs to the overlay${at}; changing it behind the mount's back is undefined. ${how}`);
}
