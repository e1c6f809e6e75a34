/**
 * Live kernel mounts. When a stack's upper directory is the upperdir of a mounted
 * overlay (per /proc/self/mountinfo), writing into that upper behind the kernel's
 * back is undefined behaviour. Writes then go through the mount's merged directory
 * with plain fs calls (the kernel copies up; the watcher reports it), or are refused
 * with EROFS when the merged directory cannot be reached from here.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { copyMetadata } from './overlay/copyUp';
import { createError, isErrno } from './overlay/errors';
import { keepsInode } from './overlay/inPlaceWrite';
import { decodeName, encodePath, parseMountinfoLine, type Overlay, type StackSpec } from './overlay/index';
import { splitRequestPath } from './overlay/paths';
import { parseDev } from './holders/mountinfo';

export interface LiveMountInfo {
  merged: string;
  reachable: boolean;
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Is `dir` the root of the mount with device `dev` (and not over-mounted by something else)? */
function servesMount(dir: string, dev: number): boolean {
  try {
    const st = fs.statSync(dir);
    return st.isDirectory() && st.dev === dev;
  } catch {
    return false;
  }
}

interface OverlayMount {
  spec: StackSpec;
  dev: number;
}

function overlayMounts(mountinfo?: string): OverlayMount[] {
  let text: string;
  try {
    text = mountinfo ?? fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: OverlayMount[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(' - overlay ')) continue;
    try {
      out.push({ spec: parseMountinfoLine(line), dev: parseDev(line.split(' ')[2]) });
    } catch {
      /* skip */
    }
  }
  return out;
}

/** The live kernel mount whose upperdir is `upper`, if any (read fresh from mountinfo). */
export function findLiveMount(upper: string | undefined, mountinfo?: string): LiveMountInfo | undefined {
  if (!upper) return undefined;
  const want = realOrSelf(upper);
  const hits = overlayMounts(mountinfo).filter(
    (m) => m.spec.upper !== undefined && m.spec.upper.startsWith('/') && (m.spec.upper === upper || realOrSelf(m.spec.upper) === want),
  );
  if (hits.length === 0) return undefined;
  const reachable = hits.find((m) => m.spec.merged && servesMount(m.spec.merged, m.dev));
  const merged = (reachable ?? hits[hits.length - 1]).spec.merged ?? '';
  return { merged, reachable: reachable !== undefined };
}

function fail(err: unknown, syscall: string, p: string): never {
  const code = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'EIO';
  throw createError(code, syscall, p);
}

/**
 * cp -a of a file or tree through the merged directory (times kept, symlinks verbatim),
 * by byte paths: fs.cp takes string paths only and reads names as (lossy) strings, so
 * names that are not valid UTF-8 would be lost. Devices, FIFOs and sockets are refused.
 */
async function copyTree(src: string, dst: string): Promise<void> {
  const s = encodePath(src);
  const d = encodePath(dst);
  const st = await fs.promises.lstat(s);
  if (st.isDirectory()) {
    await fs.promises.mkdir(d, { mode: 0o700 });
    for (const name of await fs.promises.readdir(s, { encoding: 'buffer' })) await copyTree(src + '/' + decodeName(name), dst + '/' + decodeName(name));
    await fs.promises.chmod(d, st.mode & 0o7777);
  } else if (st.isFile()) {
    await fs.promises.copyFile(s, d, fs.constants.COPYFILE_EXCL);
  } else if (st.isSymbolicLink()) {
    await fs.promises.symlink(await fs.promises.readlink(s, { encoding: 'buffer' }), d);
  } else {
    throw createError('ENOTSUP', 'copyfile', src, 'cannot copy a device, FIFO or socket');
  }
  await fs.promises.lutimes(d, st.atime, st.mtime);
}

/** Writes of one overlay routed through the merged directory of its kernel mount. */
export class LiveWriter {
  private readonly handles = new Map<number, fs.promises.FileHandle>();

  constructor(
    private readonly overlay: Overlay,
    readonly merged: string,
  ) {}

  /** Real path under merged for an overlay path; symlinks resolve inside the overlay, never outside. */
  private real(p: string, syscall: string, followLast = false): string {
    const comps = splitRequestPath(p, syscall);
    if (comps.length === 0) return this.merged;
    let canon: string;
    try {
      const parent = this.overlay.view.resolve(comps.slice(0, -1), true, syscall, p);
      canon = parent.path === '/' ? '/' + comps[comps.length - 1] : parent.path + '/' + comps[comps.length - 1];
      if (followLast) {
        const full = this.overlay.view.resolve(comps, true, syscall, p);
        if (full.top) canon = full.path;
      }
    } catch (err) {
      fail(err, syscall, p);
    }
    return this.merged + canon;
  }

  /** Where overlay path `p` is under the merged directory (symlinks resolved inside the overlay). */
  pathOf(p: string, syscall: string, followLast = false): string {
    return this.real(p, syscall, followLast);
  }

  /** Run a plain fs call on merged paths, failing the Node way with the overlay path. */
  async through<T>(syscall: string, p: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      fail(err, syscall, p);
    }
  }

  private async exists(real: string): Promise<fs.Stats | undefined> {
    try {
      return await fs.promises.lstat(encodePath(real));
    } catch {
      return undefined;
    }
  }

  async writeFile(p: string, data: Uint8Array, create: boolean, overwrite: boolean): Promise<void> {
    const real = this.real(p, 'open', true);
    const st = await this.exists(real);
    if (st?.isDirectory()) throw createError('EISDIR', 'open', p);
    if (st && !overwrite) throw createError('EEXIST', 'open', p);
    if (!st && !create) throw createError('ENOENT', 'open', p);
    if (st && keepsInode(st)) return this.writeInPlace(real, data, p);
    // Whole-file writes are atomic here too: a temp file beside the target, renamed over it
    // through the kernel, so a concurrent reader or writer never sees a torn file. It gets the
    // owner, the xattrs and the mode that the same write on the mount leaves (privileges.ts).
    const tmp = this.sibling(real);
    try {
      await fs.promises.writeFile(encodePath(tmp), data, { flag: 'wx', mode: st ? 0o600 : 0o666 });
      if (st) copyMetadata(real, st, tmp, { times: false, afterWrite: true });
      await fs.promises.rename(encodePath(tmp), encodePath(real));
    } catch (err) {
      await fs.promises.rm(encodePath(tmp), { force: true });
      fail(err, 'open', p);
    }
  }

  /** A hidden name beside `real` for a temp file of this process. */
  private sibling(real: string): string {
    const slash = real.lastIndexOf('/');
    return `${real.slice(0, slash)}/.${real.slice(slash + 1)}.ovlws-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  }

  /**
   * A file whose inode must stay (inPlaceWrite.ts: other hard links, or an owner a new file would
   * not get) is written in place through the mount, as any program writing it there: the kernel
   * copies it up and drops privileges. The old content is kept beside it first (a hidden
   * `.NAME.ovlws-PID-….old`, as vim keeps `NAME~`) and removed after the write; a failed write
   * puts it back, and a writer killed mid-write leaves it there to recover by hand (the kernel's
   * work directory is the kernel's: nothing may be kept in it).
   */
  private async writeInPlace(real: string, data: Uint8Array, p: string): Promise<void> {
    let backup: string | undefined = this.sibling(real) + '.old';
    try {
      // Not copyFile: it copies the mode too, and a setuid copy must not sit in the user's tree.
      await pipeline(fs.createReadStream(encodePath(real)), fs.createWriteStream(encodePath(backup), { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      await fs.promises.rm(encodePath(backup), { force: true });
      if (!isErrno(err, 'EACCES', 'EPERM')) fail(err, 'open', p);
      backup = undefined; // unreadable to us: written unguarded, as the kernel would
    }
    try {
      await this.overwrite(real, data);
    } catch (err) {
      if (backup) await this.overwrite(real, await fs.promises.readFile(encodePath(backup))).catch(() => undefined);
      fail(err, 'open', p);
    } finally {
      if (backup) await fs.promises.rm(encodePath(backup), { force: true });
    }
  }

  private async overwrite(real: string, data: Uint8Array): Promise<void> {
    const fh = await fs.promises.open(encodePath(real), fs.constants.O_WRONLY | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW);
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
  }

  async delete(p: string, recursive: boolean): Promise<void> {
    const real = this.real(p, 'rm');
    if (real === this.merged) throw createError('EBUSY', 'rm', p);
    const st = await this.exists(real);
    if (!st) throw createError('ENOENT', 'rm', p);
    try {
      if (st.isDirectory()) await (recursive ? fs.promises.rm(encodePath(real), { recursive: true }) : fs.promises.rmdir(encodePath(real)));
      else await fs.promises.unlink(encodePath(real));
    } catch (err) {
      fail(err, 'rm', p);
    }
  }

  async rename(from: string, to: string, overwrite: boolean): Promise<void> {
    const src = this.real(from, 'rename');
    const dst = this.real(to, 'rename');
    const d = await this.exists(dst);
    if (d && !overwrite) throw createError('EEXIST', 'rename', from, undefined, to);
    // The target holds the source: rename(2) answers ENOTEMPTY, and removing it first would lose both.
    if (src.startsWith(dst + '/')) throw createError('ENOTEMPTY', 'rename', from, undefined, to);
    try {
      if (d?.isDirectory() && overwrite) await fs.promises.rm(encodePath(dst), { recursive: true });
      await fs.promises.rename(encodePath(src), encodePath(dst));
    } catch (err) {
      if ((err as { code?: string }).code !== 'EXDEV') fail(err, 'rename', from);
      // A directory with lower parts and no redirect_dir: do what mv does.
      try {
        await copyTree(src, dst);
        await fs.promises.rm(encodePath(src), { recursive: true });
      } catch (err2) {
        fail(err2, 'rename', from);
      }
    }
  }

  async mkdir(p: string): Promise<void> {
    try {
      await fs.promises.mkdir(encodePath(this.real(p, 'mkdir')));
    } catch (err) {
      fail(err, 'mkdir', p);
    }
  }

  async copy(from: string, to: string, overwrite: boolean): Promise<void> {
    const src = this.real(from, 'copyfile');
    const dst = this.real(to, 'copyfile');
    const d = await this.exists(dst);
    if (d && !overwrite) throw createError('EEXIST', 'copyfile', from, undefined, to);
    try {
      if (d) await fs.promises.rm(encodePath(dst), { recursive: true });
      await copyTree(src, dst);
    } catch (err) {
      fail(err, 'copyfile', from);
    }
  }

  async open(p: string, id: number, flags: { write?: boolean; create?: boolean; truncate?: boolean; exclusive?: boolean }): Promise<void> {
    const c = fs.constants;
    let f = flags.write ? c.O_RDWR : c.O_RDONLY;
    if (flags.create) f |= c.O_CREAT;
    if (flags.truncate) f |= c.O_TRUNC;
    if (flags.exclusive) f |= c.O_EXCL;
    try {
      this.handles.set(id, await fs.promises.open(encodePath(this.real(p, 'open', true)), f, 0o666));
    } catch (err) {
      fail(err, 'open', p);
    }
  }

  has(id: number): boolean {
    return this.handles.has(id);
  }

  async read(id: number, position: number, length: number): Promise<Buffer> {
    const fh = this.handles.get(id);
    if (!fh) throw createError('EBADF', 'read', String(id));
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  }

  async write(id: number, position: number, data: Uint8Array): Promise<number> {
    const fh = this.handles.get(id);
    if (!fh) throw createError('EBADF', 'write', String(id));
    return (await fh.write(data, 0, data.length, position)).bytesWritten;
  }

  async close(id: number): Promise<void> {
    const fh = this.handles.get(id);
    this.handles.delete(id);
    await fh?.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.handles.keys()]) await this.close(id);
  }
}
