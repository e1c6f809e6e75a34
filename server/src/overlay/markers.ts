/**
 * Writing whiteouts and opaque markers in the stack's format: kernel (character
 * device 0/0, trusted|user.overlay.opaque="y") or OCI (`.wh.NAME`, `.wh..wh..opq`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createError } from './errors';
import { lstatOrUndefined, type LayerView } from './lookup';
import { encodePath, readdirEntries } from './names';
import { setXattr } from './xattr';
import type { WorkDir } from './workdir';

export const OCI_OPAQUE = '.wh..wh..opq';

function mknodWhiteout(p: string): void {
  try {
    execFileSync('mknod', [p, 'c', '0', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw createError('EPERM', 'mknod', p, `cannot create a kernel whiteout (character device 0/0): ${stderr || (err as Error).message}`);
  }
}

export class Markers {
  constructor(
    private readonly view: LayerView,
    private readonly work: WorkDir,
  ) {}

  /** Is there a whiteout for `name` in the upper directory `dir`? */
  hasWhiteout(dir: string, name: string): boolean {
    if (this.view.format === 'oci') return lstatOrUndefined(dir + '/.wh.' + name) !== undefined;
    const st = lstatOrUndefined(dir + '/' + name);
    return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
  }

  /**
   * Put a whiteout for `name` in upper directory `dir`. Kernel format: made in the
   * work directory and renamed over whatever non-directory is there (atomic).
   */
  whiteout(dir: string, name: string): void {
    if (this.view.format === 'oci') {
      fs.writeFileSync(encodePath(dir + '/.wh.' + name), '', { flag: 'w', mode: 0o600 });
      try {
        fs.unlinkSync(encodePath(dir + '/' + name));
      } catch {
        /* nothing in upper */
      }
      return;
    }
    const tmp = this.work.tempName();
    mknodWhiteout(tmp);
    fs.renameSync(encodePath(tmp), encodePath(dir + '/' + name));
  }

  /** Remove a whiteout for `name` from upper directory `dir`, if any. */
  clearWhiteout(dir: string, name: string): void {
    if (this.view.format === 'oci') {
      try {
        fs.unlinkSync(encodePath(dir + '/.wh.' + name));
      } catch {
        /* none */
      }
      return;
    }
    if (this.hasWhiteout(dir, name)) fs.unlinkSync(encodePath(dir + '/' + name));
  }

  /** Mark an upper directory opaque. */
  setOpaque(dirReal: string): void {
    if (this.view.format === 'oci') fs.writeFileSync(encodePath(dirReal + '/' + OCI_OPAQUE), '', { mode: 0o600 });
    else setXattr(dirReal, this.view.xattrPrefix + 'opaque', 'y');
  }

  /** Remove every whiteout (and OCI opaque marker) inside an upper directory that is about to go. */
  clearInside(dirReal: string): void {
    for (const d of readdirEntries(dirReal)) {
      const p = encodePath(dirReal + '/' + d.name);
      if (this.view.format === 'oci' ? d.name.startsWith('.wh.') : d.isCharacterDevice() && fs.lstatSync(p).rdev === 0) fs.unlinkSync(p);
    }
  }
}
