/** Running coreutils in a shell, mapping their messages to errno codes, and mounting overlays. */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ShellResult {
  ok: boolean;
  /** Acceptable errno codes for a failure, from the tool's message; [] when the message does not tell. */
  codes: string[];
  stderr: string;
}

const ENV = { ...process.env, LC_ALL: 'C', LANG: 'C' };

/**
 * strerror texts and tool-specific messages, mapped to errno codes. Order matters: the first hit
 * wins. dash prints "Directory nonexistent" both for a missing parent and for a parent that is not
 * a directory, so that message allows either code.
 */
const MESSAGES: [RegExp, string[]][] = [
  [/Directory nonexistent/, ['ENOENT', 'ENOTDIR']],
  [/No such file or directory/, ['ENOENT']],
  [/File exists/, ['EEXIST']],
  [/Directory not empty/, ['ENOTEMPTY', 'EEXIST']],
  [/Not a directory/, ['ENOTDIR']],
  [/Is a directory/, ['EISDIR']],
  [/Too many levels of symbolic links/, ['ELOOP']],
  [/Invalid cross-device link/, ['EXDEV']],
  [/Read-only file system/, ['EROFS']],
  [/Permission denied/, ['EACCES']],
  [/Operation not permitted/, ['EPERM']],
  [/Invalid argument/, ['EINVAL']],
  [/cannot overwrite directory .* with non-directory/, ['EISDIR']],
  [/cannot overwrite non-directory .* with directory/, ['ENOTDIR']],
  [/to a subdirectory of itself/, ['EINVAL']],
  // mv's refusal to move a file onto itself and ln -f's refusal to replace a directory carry no
  // strerror text; overlayws reports them as EINVAL and EISDIR.
  [/are the same file/, ['EINVAL']],
  [/: cannot overwrite directory$/m, ['EISDIR']],
];

export function codesFromMessage(stderr: string): string[] {
  for (const [re, codes] of MESSAGES) if (re.test(stderr)) return codes;
  return [];
}

/** Run `sh -c script` in `cwd` with umask 022 and the C locale. Never throws on a non-zero exit. */
export function sh(script: string, cwd: string): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', `umask 022; ${script}`], { cwd, env: ENV, timeout: 20_000 }, (err, _stdout, stderr) => {
      if (!err) resolve({ ok: true, codes: [], stderr });
      else resolve({ ok: false, codes: codesFromMessage(stderr), stderr: stderr || String(err.message) });
    });
  });
}

/** Run a command synchronously; throws with its stderr on failure. */
export function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Single-quote for sh. */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface OverlayDirs {
  /** Lower layers, TOP-MOST FIRST. */
  lower: string[];
  upper: string;
  work: string;
  merged: string;
}

/** Fixed options so the kernel's defaults cannot change what the layers look like. */
export const KERNEL_OPTIONS = 'redirect_dir=off,index=off,metacopy=off,xino=off';

export function mountKernel(d: OverlayDirs): void {
  run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d.lower.join(':')},upperdir=${d.upper},workdir=${d.work},${KERNEL_OPTIONS}`, d.merged]);
}

export function mountFuse(d: OverlayDirs): void {
  run('fuse-overlayfs', ['-o', `lowerdir=${d.lower.join(':')},upperdir=${d.upper},workdir=${d.work}`, d.merged]);
}

/** Unmount, retrying lazily if busy. Never throws: this runs in `finally` blocks. */
export function unmount(dir: string): void {
  for (const args of [[dir], ['-l', dir]]) {
    try {
      run('umount', args);
      return;
    } catch {
      // try the next way
    }
  }
}

/** True when `dir` is a mount point (as listed in /proc/self/mounts). */
export function isMounted(dir: string): boolean {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
  const esc = path.resolve(dir).replace(/ /g, '\\040');
  return mounts.split('\n').some((l) => l.split(' ')[1] === esc);
}

export function hasCommand(name: string): boolean {
  try {
    run('/bin/sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Can we mount a kernel overlay here? Returns undefined when yes, else the reason.
 * Mounts a tiny stack under `scratch` and unmounts it.
 */
export function kernelOverlayUnavailable(scratch: string): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return `not root (uid ${process.getuid()}): mount -t overlay needs CAP_SYS_ADMIN`;
  }
  const d: OverlayDirs = {
    lower: [path.join(scratch, 'probe-l')],
    upper: path.join(scratch, 'probe-u'),
    work: path.join(scratch, 'probe-w'),
    merged: path.join(scratch, 'probe-m'),
  };
  for (const p of [...d.lower, d.upper, d.work, d.merged]) fs.mkdirSync(p, { recursive: true });
  try {
    mountKernel(d);
  } catch (err) {
    const msg = String((err as { stderr?: string }).stderr || (err as Error).message).trim();
    return `mount -t overlay failed: ${msg}`;
  } finally {
    if (isMounted(d.merged)) unmount(d.merged);
    for (const p of [...d.lower, d.upper, d.work, d.merged]) fs.rmSync(p, { recursive: true, force: true });
  }
  return undefined;
}
