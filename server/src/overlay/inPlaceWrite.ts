/**
 * Whole-file writes that keep the file's inode. A whole-file write normally replaces the file
 * (new data in a temp file in the work dir, renamed over it: a crash leaves the old file or the
 * new one, never a torn one). That cannot stand in for the kernel's write when the inode
 * matters: when another name shares it (nlink > 1: on a kernel mount every name reads the new
 * data), or when a new file would not get the old one's owner and group (a writer without
 * CAP_CHOWN creates files as itself; the kernel's write keeps the owner). Those files are
 * written in place, as vim does with 'backupcopy' (and VS Code's disk provider with any file):
 *
 *   1. the old content is copied to <work>/work/#ovlws-PID-N.old,
 *   2. a second link to the file is made as #ovlws-PID-N.dest (which inode to put it back into),
 *   3. the file is truncated and written,
 *   4. .dest then .old are removed.
 *
 * A writer killed between 2 and 4 leaves the pair; the next engine to open the stack (a
 * restarted server, the next CLI command) copies .old back into .dest's inode before anything
 * else (WorkDir.cleanStale): the file is its old content again, every name still sharing it.
 * A failed write (ENOSPC...) puts the old content back at once. Without read access to the file
 * or permission to link it (fs.protected_hardlinks), the write goes ahead unguarded, as the
 * kernel's own write would.
 */
import * as fs from 'node:fs';
import { isErrno } from './errors';
import { encodePath } from './names';
import type { WorkDir } from './workdir';
import type { LayerStat } from './lstat';

const OLD = '.old';
const DEST = '.dest';

/** Must a whole-file write of the existing upper file `st` keep its inode rather than replace it? */
export function keepsInode(st: LayerStat): boolean {
  if (st.nlink > 1) return true;
  const uid = process.geteuid?.();
  if (uid === undefined || uid === 0) return false;
  return st.uid !== uid || st.gid !== process.getegid?.();
}

/** Copy the bytes of `from` into the existing file `to` (its inode, owner and mode stay). */
function copyInto(from: string, to: string): void {
  const src = fs.openSync(encodePath(from), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const dst = fs.openSync(encodePath(to), fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n; (n = fs.readSync(src, buf, 0, buf.length, null)) > 0;) {
        for (let off = 0; off < n;) off += fs.writeSync(dst, buf, off, n - off);
      }
    } finally {
      fs.closeSync(dst);
    }
  } finally {
    fs.closeSync(src);
  }
}

/** Write `data` over the regular file `real` in place, guarded as the module comment says. */
export async function writeInPlace(work: WorkDir, real: string, data: Uint8Array | string): Promise<void> {
  const base = work.tempName();
  const old = base + OLD;
  const dest = base + DEST;
  let guarded = false;
  try {
    await fs.promises.copyFile(encodePath(real), encodePath(old), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    fs.chmodSync(encodePath(old), 0o600);
    fs.linkSync(encodePath(real), encodePath(dest));
    guarded = true;
  } catch (err) {
    fs.rmSync(encodePath(dest), { force: true });
    fs.rmSync(encodePath(old), { force: true });
    // Nothing is written yet: only a missing permission lets the write go on unguarded.
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
  }
  try {
    const fh = await fs.promises.open(encodePath(real), fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW);
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (guarded) copyInto(old, dest);
    throw err;
  } finally {
    if (guarded) {
      fs.rmSync(encodePath(dest), { force: true });
      fs.rmSync(encodePath(old), { force: true });
    }
  }
}

/**
 * Put back the old content of every in-place write that a dead writer left unfinished in the
 * work directory `dir`, given the names there of dead writers. Returns the names to keep (a
 * pair that could not be put back stays for the next open); all others may be removed.
 */
export function recoverInPlaceWrites(dir: string, dead: string[]): Set<string> {
  const keep = new Set<string>();
  const names = new Set(dead);
  for (const name of dead) {
    if (!name.endsWith(DEST)) continue;
    const old = name.slice(0, -DEST.length) + OLD;
    if (!names.has(old)) continue; // the write finished (.dest goes first): nothing to put back
    try {
      copyInto(`${dir}/${old}`, `${dir}/${name}`);
    } catch {
      keep.add(name).add(old);
    }
  }
  return keep;
}
