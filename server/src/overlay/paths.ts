/** Overlay paths: absolute from the overlay root, '/'-separated, never leaving the root. */
import { createError } from './errors';

const NAME_MAX = 255;
const PATH_MAX = 4096;

/**
 * Split a request path into components. Refuses what could leave the root or
 * is not a path: not absolute, NUL, '..' components, overlong names.
 * '.' and empty components are dropped.
 */
export function splitRequestPath(p: unknown, syscall: string): string[] {
  if (typeof p !== 'string') throw createError('EINVAL', syscall, String(p), 'path must be a string');
  if (!p.startsWith('/')) throw createError('EINVAL', syscall, p, 'path must be absolute from the overlay root');
  if (p.includes('\0')) throw createError('EINVAL', syscall, p.replace(/\0/g, '\\0'), 'path contains a NUL byte');
  if (Buffer.byteLength(p) > PATH_MAX) throw createError('ENAMETOOLONG', syscall, p.slice(0, 64) + '…');
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw createError('EINVAL', syscall, p, "path may not contain '..'");
    if (Buffer.byteLength(c) > NAME_MAX) throw createError('ENAMETOOLONG', syscall, p);
    out.push(c);
  }
  return out;
}

export function joinComps(comps: readonly string[]): string {
  return '/' + comps.join('/');
}
