/**
 * Copy-up as the kernel does it: parents first; the copy is made in the work
 * directory (data by reflink where possible, else streamed by the kernel through
 * copy_file_range — never the whole file in memory), then owner, xattrs, mode and
 * times, then moved into the upper layer in one step. One copy-up per path at a time.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import { isErrno } from './errors';
import type { Entry, Hit, LayerView } from './lookup';
import { encodePath, hasEscapes } from './names';
import { keptByWrite, modeAfterWrite } from './privileges';
import type { CopyUpEvent } from './types';
import type { WorkDir } from './workdir';
import { getXattr, listXattrs, setXattr } from './xattr';
import type { LayerStat } from './lstat';

const execFileAsync = promisify(execFile);

const IS_ROOT = process.getuid?.() === 0;

/**
 * Copy owner, xattrs (never the overlay's own, trusted.overlay.* and user.overlay.*, whatever
 * the format), mode and times from `st`/`from` to `to`.
 * `afterWrite`: `to` is the file with new data (a whole-file write by replacement), so it gets
 * what a data write leaves (privileges.ts): no capabilities, setuid/setgid as the rule says.
 */
export function copyMetadata(from: string, st: LayerStat, to: string, opts: { times?: boolean; afterWrite?: boolean } = {}): void {
  const { times = true, afterWrite = false } = opts;
  const isLink = st.isSymbolicLink();
  const dest = encodePath(to);
  if (IS_ROOT) {
    try {
      fs.lchownSync(dest, st.uid, st.gid);
    } catch {
      /* not permitted here */
    }
  }
  if (!isLink) {
    for (const name of listXattrs(from)) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
      if (afterWrite && !keptByWrite(name)) continue;
      const value = getXattr(from, name);
      if (value === undefined) continue;
      try {
        setXattr(to, name, value);
      } catch {
        /* trusted.* without privilege, or fs without xattrs */
      }
    }
    // After the owner: chown clears setuid and setgid.
    fs.chmodSync(dest, afterWrite ? modeAfterWrite(st) : st.mode & 0o7777);
  }
  // As seconds, not Dates (whole milliseconds): Node sets times through a double, within ~2 µs
  // of the nanoseconds the kernel's copy-up keeps (diff.ts compares with that tolerance).
  if (times) fs.lutimesSync(dest, st.atimeMs / 1000, st.mtimeMs / 1000);
}

/**
 * Sparse copy with cp (it seeks over holes, SEEK_DATA, and reflinks when it can). cp
 * takes string arguments only: a source whose path holds escaped bytes (names.ts) is
 * handed over as /proc/<pid>/fd/N of our own descriptor, which cp follows (the caller
 * checked it is a regular file). A destination with escaped bytes (only when the work
 * directory's own path has them) is copied without hole detection.
 */
async function cpSparse(from: string, to: string): Promise<void> {
  if (hasEscapes(to)) {
    await fs.promises.copyFile(encodePath(from), encodePath(to), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    return;
  }
  const args = ['--sparse=always', '--reflink=auto'];
  if (!hasEscapes(from)) {
    await execFileAsync('cp', [...args, '--no-dereference', '--', from, to]);
    return;
  }
  const fd = fs.openSync(encodePath(from), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    await execFileAsync('cp', [...args, '--', `/proc/${process.pid}/fd/${fd}`, to]);
  } finally {
    fs.closeSync(fd);
  }
}

export class CopyUp {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly view: LayerView,
    private readonly work: WorkDir,
    private readonly resolveDir: (comps: string[]) => Entry,
    private readonly onCopyUp: (e: CopyUpEvent) => void,
  ) {}

  upperPath(comps: readonly string[]): string {
    return this.view.realPath(this.view.upper as { ref: 'upper'; root: string }, comps);
  }

  /** Make sure directory `entry` exists in the upper layer; returns its upper real path. */
  dir(entry: Entry): string {
    const top = entry.top as Hit;
    if (top.layer.ref === 'upper') return top.real;
    if (entry.comps.length > 0) this.dir(this.resolveDir(entry.comps.slice(0, -1)));
    const dest = this.upperPath(entry.comps);
    const tmp = this.work.tempName();
    fs.mkdirSync(encodePath(tmp), { mode: 0o700 });
    copyMetadata(top.real, top.st, tmp);
    try {
      fs.renameSync(encodePath(tmp), encodePath(dest));
    } catch (err) {
      fs.rmdirSync(encodePath(tmp));
      // Someone else copied it up first: theirs stands.
      if (!isErrno(err, 'EEXIST', 'ENOTEMPTY')) throw err;
    }
    return dest;
  }

  /** Copy a non-directory up (data included); returns its upper real path. */
  file(entry: Entry): Promise<string> {
    const top = entry.top as Hit;
    if (top.layer.ref === 'upper') return Promise.resolve(top.real);
    const key = entry.path;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.doFile(entry).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async doFile(entry: Entry): Promise<string> {
    const top = entry.top as Hit;
    this.dir(this.resolveDir(entry.comps.slice(0, -1)));
    const dest = this.upperPath(entry.comps);
    const tmp = this.work.tempName();
    try {
      await this.copyData(top, tmp);
      copyMetadata(top.real, top.st, tmp);
      if (!this.install(tmp, dest)) return dest;
    } catch (err) {
      fs.rmSync(encodePath(tmp), { force: true });
      throw err;
    }
    this.onCopyUp({ path: entry.path, lowerPath: top.real, upperPath: dest, fromLayer: top.layer.ref as number });
    return dest;
  }

  private async copyData(top: Hit, tmp: string): Promise<void> {
    const st = top.st;
    if (st.isFile() && st.blocks * 512 < st.size) {
      // Sparse: copy_file_range without reflink writes every hole as zeros (an 8 GiB image
      // took 55 s and 8 GiB of disk). cp seeks over holes (SEEK_DATA) and reflinks when it can.
      await cpSparse(top.real, tmp);
    } else if (st.isFile()) {
      await fs.promises.copyFile(encodePath(top.real), encodePath(tmp), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(encodePath(top.real), { encoding: 'buffer' }), encodePath(tmp));
    } else {
      const kind = st.isFIFO()
        ? ['p']
        : st.isCharacterDevice()
          ? ['c', String((st.rdev >> 8) & 0xfff), String(st.rdev & 0xff)]
          : st.isBlockDevice()
            ? ['b', String((st.rdev >> 8) & 0xfff), String(st.rdev & 0xff)]
            : undefined;
      if (!kind) throw Object.assign(new Error(`cannot copy up a socket: ${top.real}`), { code: 'ENOTSUP' });
      execFileSync('mknod', [tmp, ...kind], { stdio: 'ignore' });
    }
  }

  /**
   * Move a finished copy into place without replacing what another writer may have
   * put there meanwhile (link() fails with EEXIST); a whiteout is never at a copied-up
   * name, so EEXIST means someone else copied up first and theirs stands.
   */
  private install(tmpPath: string, destPath: string): boolean {
    const tmp = encodePath(tmpPath);
    const dest = encodePath(destPath);
    try {
      fs.linkSync(tmp, dest);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        fs.rmSync(tmp, { force: true });
        return false;
      }
      if (!isErrno(err, 'EPERM', 'ENOTSUP', 'EMLINK')) throw err;
      fs.renameSync(tmp, dest);
      return true;
    }
    fs.unlinkSync(tmp);
    return true;
  }
}
