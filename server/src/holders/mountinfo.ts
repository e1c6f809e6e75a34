/**
 * Mounts as /proc/PID/mountinfo lists them (proc_pid_mountinfo(5)): every mount, not only
 * overlays, with the device its files report and the directory of its filesystem that the
 * mount shows (`root`, for bind mounts). What the holder scan needs to say which mount
 * namespaces can reach a file at all, and on which device a path of a process lies.
 */
import * as fs from 'node:fs';

export interface Mount {
  /** st_dev of the files of this mount (glibc's makedev of mountinfo's major:minor). */
  dev: number;
  /** The directory of the filesystem this mount shows ('/' for a whole filesystem). */
  root: string;
  /** Where it is mounted, as the process whose mountinfo it is sees it. */
  mountPoint: string;
  fstype: string;
  /** The whole line (overlay stacks are parsed from it by the engine's parseMountinfoLine). */
  line: string;
}

/** st_dev as glibc's makedev builds it from a major and a minor number. */
export function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) + (minor & 0xff) + (minor & ~0xff) * 4096 + (major & ~0xfff) * 2 ** 32;
}

/** mountinfo's "major:minor" (decimal; /proc/PID/maps prints the same pair in hex: radix 16). */
export function parseDev(majmin: string, radix = 10): number {
  const colon = majmin.indexOf(':');
  return makedev(parseInt(majmin.slice(0, colon), radix), parseInt(majmin.slice(colon + 1), radix));
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : s;
}

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0) continue;
    out.push({ dev: parseDev(f[2]), root: unescape(f[3]), mountPoint: unescape(f[4]), fstype: f[dash + 1], line });
  }
  return out;
}

/** The mounts `pid` sees ('self': this process). Throws as reading /proc does (EACCES, ENOENT). */
export function readMounts(pid: number | 'self' = 'self'): Mount[] {
  return parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

const under = (p: string, dir: string): boolean => dir === '/' || p === dir || p.startsWith(dir + '/');

/**
 * The mount a path lies on, as `mounts` see it: the longest mount point above it (of several
 * at one point, the last mounted, which hides the others).
 */
export function mountOf(p: string, mounts: readonly Mount[]): Mount | undefined {
  let best: Mount | undefined;
  for (const m of mounts) if (under(p, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}

/**
 * Where the file at `p` (a path as `mounts` see it, on device `dev`) is inside its
 * filesystem: the mount's root joined with the rest of the path. Undefined when no mount
 * of `dev` holds `p`.
 */
export function pathInFilesystem(p: string, dev: number, mounts: readonly Mount[]): string | undefined {
  const m = mountOf(p, mounts);
  if (!m || m.dev !== dev) return undefined;
  const rest = m.mountPoint === '/' ? p : p.slice(m.mountPoint.length);
  if (rest === '' || rest === '/') return m.root;
  return m.root === '/' ? rest : m.root + rest;
}

/** Does a mount show the file that is at `fsPath` in its filesystem (its root is that file or a directory above it)? */
export function mountShows(m: Mount, fsPath: string): boolean {
  return under(fsPath, m.root);
}
