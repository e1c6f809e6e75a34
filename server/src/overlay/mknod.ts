/** mknod(1): character and block devices, FIFOs and the kernel's whiteouts (character device 0/0). */
import { execFileSync } from 'node:child_process';
import { createError } from './errors';
import { withStringPath } from './names';

/**
 * mknod at `p`, whose own name must be plain UTF-8 (mknod takes a string; withStringPath
 * reaches parents with escaped bytes). `what` names the node in the error.
 */
export function mknod(p: string, type: 'c' | 'b' | 'p', major: number, minor: number, what: string): void {
  try {
    const made = withStringPath(p, (s) =>
      execFileSync('mknod', type === 'p' ? [s, 'p'] : [s, type, String(major), String(minor)], { stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    if (made === undefined) throw createError('ENOENT', 'mknod', p);
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw createError('EPERM', 'mknod', p, `cannot create ${what}: ${stderr || (err as Error).message}`);
  }
}
