/**
 * The system calls under overlayws's write commands, made by the engine or, for an upper that a
 * mounted kernel overlay uses, through that mount's merged directory (the kernel copies up).
 * Each is one call with the kernel's semantics; what coreutils builds on them is cliCommands.ts.
 */
import * as fs from 'node:fs';
import { createError, encodePath, isErrno, type Overlay } from './overlay';
import type { LiveWriter } from './liveMount';

export interface Writes {
  /** open(O_WRONLY|O_CREAT|O_TRUNC) and write: `p` names no symlink (callers resolve it first). */
  writeFile(p: string, data: Buffer): Promise<void>;
  appendFile(p: string, data: Buffer): Promise<void>;
  /** open(O_CREAT|O_EXCL) of an empty regular file (mode 0666 less the umask). */
  createFile(p: string): Promise<void>;
  /** truncate(2) of an existing file. */
  truncate(p: string, size: number): Promise<void>;
  mkdir(p: string, recursive: boolean): Promise<void>;
  /** unlink(2) of a non-directory, or with `recursive` a directory and everything below it. */
  rm(p: string, recursive: boolean): Promise<void>;
  rmdir(p: string): Promise<void>;
  /**
   * rename(2), and for a directory the kernel answers EXDEV for, what mv then does: move its
   * entries one by one, or with `copyBelow` copy them (mv without -T to a new name).
   */
  rename(src: string, dst: string, copyBelow: boolean): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  chmod(p: string, mode: number): Promise<void>;
}

export function engineWrites(ov: Overlay): Writes {
  return {
    writeFile: (p, data) => ov.writeFile(p, data),
    appendFile: (p, data) => ov.appendFile(p, data),
    createFile: (p) => ov.writeFile(p, Buffer.alloc(0), { overwrite: false }),
    truncate: (p, size) => ov.truncate(p, size),
    mkdir: (p, recursive) => ov.mkdir(p, { recursive }),
    rm: (p, recursive) => ov.rm(p, { recursive }),
    rmdir: (p) => ov.rmdir(p),
    rename: (src, dst, copyBelow) => ov.rename(src, dst, { copyBelow }),
    symlink: (target, p) => ov.symlink(target, p),
    chmod: (p, mode) => ov.chmod(p, mode),
  };
}

/** Writes through the merged directory of the kernel mount that owns the upper. */
export function liveWrites(ov: Overlay, live: LiveWriter): Writes {
  const fsp = fs.promises;
  const at = (p: string, syscall: string, follow = false): string | Buffer => encodePath(live.pathOf(p, syscall, follow));
  return {
    writeFile: async (p, data) => {
      try {
        // Atomic (a temp file beside it, renamed over it): concurrent readers never see a torn file.
        await live.writeFile(p, data, true, true);
      } catch (err) {
        if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
        // No room for a temp file in a directory the user may not write: in place, as `cat > PATH`.
        await live.through('open', p, () => fsp.writeFile(at(p, 'open', true), data));
      }
    },
    appendFile: (p, data) => live.through('open', p, () => fsp.appendFile(at(p, 'open', true), data)),
    createFile: (p) => live.through('open', p, async () => (await fsp.open(at(p, 'open'), 'wx', 0o666)).close()),
    truncate: (p, size) => live.through('open', p, () => fsp.truncate(at(p, 'open', true), size)),
    mkdir: async (p, recursive) => {
      if (!recursive) return live.through('mkdir', p, () => fsp.mkdir(at(p, 'mkdir')));
      // mkdir -p one level at a time, each looked up in the overlay as the engine's mkdir -p does:
      // a symlink to a directory is followed, a dangling one is EEXIST, a non-directory on the
      // way ENOTDIR (at the end EEXIST).
      const comps = p.split('/').filter((c) => c !== '' && c !== '.');
      for (let i = 1; i <= comps.length; i++) {
        const sub = '/' + comps.slice(0, i).join('/');
        const last = i === comps.length;
        const st = await ov.lstat(sub).catch((err: unknown) => {
          if (isErrno(err, 'ENOENT')) return undefined;
          throw createError((err as { code?: string }).code ?? 'EIO', 'mkdir', p);
        });
        if (!st) {
          await live.through('mkdir', p, () => fsp.mkdir(at(sub, 'mkdir')));
          continue;
        }
        let type = st.type;
        if (type === 'l') {
          try {
            type = (await ov.stat(sub)).type;
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'EEXIST';
            throw createError(code === 'ELOOP' || (code === 'ENOTDIR' && !last) ? code : 'EEXIST', 'mkdir', p);
          }
        }
        if (type !== 'd') throw createError(last ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
      }
    },
    rm: (p, recursive) => live.delete(p, recursive),
    rmdir: (p) => live.through('rmdir', p, () => fsp.rmdir(at(p, 'rmdir'))),
    rename: async (src, dst, copyBelow) => {
      const from = at(src, 'rename');
      const to = at(dst, 'rename');
      try {
        await live.through('rename', src, () => fsp.rename(from, to));
      } catch (err) {
        if (!isErrno(err, 'EXDEV')) throw err;
        // A directory with lower parts (no redirect_dir). rename(2) checked the types already;
        // an existing target must be empty, as the engine's rename says.
        const d = await ov.lstat(dst).catch(() => undefined);
        if (d?.type === 'd' && (await ov.readdir(dst)).length > 0) throw createError('ENOTEMPTY', 'rename', src, undefined, dst);
        if (copyBelow) return live.rename(src, dst, true);
        if (d) await live.through('rename', src, () => fsp.rmdir(to));
        await live.through('rename', src, () => moveEntries(from, to));
      }
    },
    symlink: (target, p) => live.through('symlink', p, () => fsp.symlink(encodePath(target), at(p, 'symlink'))),
    chmod: (p, mode) => live.through('chmod', p, () => fsp.chmod(at(p, 'chmod', true), mode)),
  };
}

/** mv after EXDEV (merged paths): make the target, rename each entry into it (recursing where EXDEV again), take the metadata, remove the source. */
async function moveEntries(from: string | Buffer, to: string | Buffer): Promise<void> {
  const fsp = fs.promises;
  const st = await fsp.lstat(from);
  await fsp.mkdir(to, 0o700);
  const sub = (dir: string | Buffer, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);
  for (const name of await fsp.readdir(from, { encoding: 'buffer' })) {
    try {
      await fsp.rename(sub(from, name), sub(to, name));
    } catch (err) {
      if (!isErrno(err, 'EXDEV')) throw err;
      await moveEntries(sub(from, name), sub(to, name));
    }
  }
  await fsp.chmod(to, st.mode & 0o7777);
  if (process.getuid?.() === 0) await fsp.lchown(to, st.uid, st.gid);
  await fsp.utimes(to, st.atime, st.mtime);
  await fsp.rmdir(from);
}
