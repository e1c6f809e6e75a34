/**
 * Permission checks on the MERGED view, as overlayfs makes them with the caller's
 * credentials (generic_permission on the overlay inode): the engine writes only its
 * own upper layer, so without these a user could "write" a file that is not theirs
 * to write by copying it up. Reads need none here: they open the real files, and
 * the filesystem checks those. Root (CAP_DAC_OVERRIDE, CAP_FOWNER) passes all.
 */
import { createError } from './errors';
import type { LayerStat } from './lstat';

export const R = 4;
export const W = 2;
export const X = 1;
const S_ISVTX = 0o1000;

interface Creds {
  uid: number;
  gid: number;
  groups: number[];
}

let creds: Creds | undefined;
function me(): Creds {
  if (!creds) creds = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0, groups: process.getgroups?.() ?? [] };
  return creds;
}

/** Is the caller in group `gid` (its effective group or a supplementary one: in_group_p)? */
export function inGroup(gid: number): boolean {
  const c = me();
  return c.gid === gid || c.groups.includes(gid);
}

/** The mode bits that apply to this caller (owner, else group, else other), as rwx. */
function bitsFor(st: LayerStat, c: Creds): number {
  if (st.uid === c.uid) return (st.mode >> 6) & 7;
  if (st.gid === c.gid || c.groups.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

/** EACCES unless the caller may `want` (R|W|X) on the merged inode `st`. */
export function checkAccess(st: LayerStat, want: number, syscall: string, path: string): void {
  const c = me();
  if (c.uid === 0) return;
  if ((bitsFor(st, c) & want) !== want) throw createError('EACCES', syscall, path, 'permission denied');
}

/**
 * EACCES/EPERM unless the caller may remove or replace `victim` in directory `dir`:
 * write and search on the directory and, in a sticky directory, own one of them.
 */
export function checkRemove(dir: LayerStat, victim: LayerStat, syscall: string, path: string): void {
  const c = me();
  if (c.uid === 0) return;
  checkAccess(dir, W | X, syscall, path);
  if ((dir.mode & S_ISVTX) !== 0 && victim.uid !== c.uid && dir.uid !== c.uid)
    throw createError('EPERM', syscall, path, 'operation not permitted (sticky directory)');
}

/** EPERM unless the caller owns the inode (chmod, setting times to given values). */
export function checkOwner(st: LayerStat, syscall: string, path: string): void {
  const c = me();
  if (c.uid === 0 || st.uid === c.uid) return;
  throw createError('EPERM', syscall, path, 'operation not permitted (not the owner)');
}
