/**
 * Mounting a stack, and taking a mount down: the kernel's overlayfs (`mount -t overlay`, where
 * this process may: CAP_SYS_ADMIN in the initial user namespace, and a stack in the kernel's
 * whiteout format), else fuse-overlayfs (unprivileged through /dev/fuse and the setuid
 * fusermount3; it also reads OCI `.wh.` whiteouts). Each way says why it was taken or why it
 * could not be, in one sentence for the status item and the log.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMountinfo, type ResolvedStack } from '../overlay/index';
import type { MountedBy } from './state';

/** The kernel's options that keep the upper in the format the engine reads (no redirects, index, metacopy). */
export const KERNEL_OPTIONS = 'redirect_dir=off,index=off,metacopy=off,xino=off';

export type Stack = Pick<ResolvedStack, 'lower' | 'upper' | 'work' | 'whiteouts' | 'userxattr'>;

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const out = `${stderr}${stdout}`.replace(/^unknown argument ignored: lazytime\n/m, '').trim();
      resolve({ ok: !err, out: out || (err ? String(err.message) : '') });
    });
  });
}

/** An executable named `name` on PATH (or /usr/sbin, /sbin, where mount lives), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function uid(): number {
  return process.getuid?.() ?? -1;
}

/** Why the kernel may not mount here, or undefined when it may. */
export function kernelRefusal(stack: Stack): string | undefined {
  if (stack.whiteouts === 'oci') return "the stack's whiteouts are OCI .wh. files, which the kernel's overlayfs does not read";
  if (uid() !== 0) return `the server runs as uid ${uid()}, and mount -t overlay needs root (CAP_SYS_ADMIN)`;
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
    if ((capEff & (1n << 21n)) === 0n) return 'the server runs as root without CAP_SYS_ADMIN, which mount -t overlay needs';
    const uidMap = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    if (uidMap.join(' ') !== '0 0 4294967295') return 'the server runs in a user namespace, where a kernel overlay mount is seen by that namespace only';
  } catch {
    /* not Linux /proc: mount will say */
  }
  if (!which('mount')) return 'mount(8) is not installed';
  return undefined;
}

/** Why fuse-overlayfs cannot mount here, or undefined when it can try. */
export function fuseRefusal(stack: Stack): string | undefined {
  if (!which('fuse-overlayfs')) return 'fuse-overlayfs is not installed (Debian and Ubuntu: apt install fuse-overlayfs)';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return `/dev/fuse is not readable and writable by uid ${uid()} (it is usually mode 0666; on a container, pass --device /dev/fuse)`;
  }
  if (uid() !== 0 && !which('fusermount3') && !which('fusermount')) return 'fusermount3 is not installed (Debian: apt install fuse3)';
  const paths = [...stack.lower, stack.upper, stack.work].filter((p): p is string => p !== undefined);
  const bad = paths.find((p) => /[,:]/.test(p));
  if (bad) return `fuse-overlayfs cannot take a layer path with a comma or a colon (${bad})`;
  return undefined;
}

function escLower(p: string): string {
  return p.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/** mount -t overlay; resolves to undefined on success, else the kernel's refusal. */
export async function mountKernel(stack: Stack, at: string): Promise<string | undefined> {
  const paths = [...stack.lower, stack.upper, stack.work].filter((p): p is string => p !== undefined);
  const bad = paths.find((p) => p.includes(','));
  if (bad) return `a layer path holds a comma (${bad}), which mount options cannot carry`;
  let opts = `lowerdir=${stack.lower.map(escLower).join(':')}`;
  if (stack.upper && stack.work) opts += `,upperdir=${stack.upper},workdir=${stack.work}`;
  opts += `,${KERNEL_OPTIONS}`;
  if (stack.userxattr) opts += ',userxattr';
  const r = await run(which('mount') ?? 'mount', ['-t', 'overlay', 'overlay', '-o', opts, at]);
  return r.ok ? undefined : `mount -t overlay failed: ${r.out}`;
}

/** fuse-overlayfs (it puts itself in the background, in a session of its own); undefined on success. */
export async function mountFuse(stack: Stack, at: string): Promise<string | undefined> {
  let opts = `lowerdir=${stack.lower.join(':')}`;
  if (stack.upper && stack.work) opts += `,upperdir=${stack.upper},workdir=${stack.work}`;
  const r = await run(which('fuse-overlayfs') ?? 'fuse-overlayfs', ['-o', opts, at]);
  return r.ok ? undefined : `fuse-overlayfs failed: ${r.out}`;
}

/**
 * Mount `stack` at `at` the best way this process can. OVERLAYWS_MOUNT_WITH=kernel or
 * fuse-overlayfs keeps to one way (the benchmarks measure each).
 */
export async function mountStack(stack: Stack, at: string): Promise<{ by: MountedBy; reason: string } | { failure: string }> {
  const only = process.env.OVERLAYWS_MOUNT_WITH;
  const noKernel = only === 'fuse-overlayfs' ? 'OVERLAYWS_MOUNT_WITH=fuse-overlayfs' : kernelRefusal(stack);
  let kernelFailed: string | undefined;
  if (!noKernel) {
    kernelFailed = await mountKernel(stack, at);
    if (!kernelFailed) return { by: 'kernel', reason: 'mount -t overlay: the server runs as root and the stack is in the kernel whiteout format' };
  }
  const whyNotKernel = noKernel ?? kernelFailed ?? '';
  const noFuse = only === 'kernel' ? 'OVERLAYWS_MOUNT_WITH=kernel' : fuseRefusal(stack);
  if (noFuse) return { failure: `not mounted: ${whyNotKernel}; and ${noFuse}` };
  const fuseFailed = await mountFuse(stack, at);
  if (fuseFailed) return { failure: `not mounted: ${whyNotKernel}; and ${fuseFailed}` };
  return { by: 'fuse-overlayfs', reason: `fuse-overlayfs: ${whyNotKernel}` };
}

/** What is mounted at `at` now (its mountinfo filesystem type), or undefined. */
export function mountedAt(at: string, mountinfo?: string): string | undefined {
  const hits = readMountinfo(mountinfo).filter((e) => e.mountPoint === at);
  return hits.length ? hits[hits.length - 1].fstype : undefined;
}

/**
 * Unmounts `at`; undefined on success (or when nothing was mounted there), else the error text
 * (e.g. busy). `lazy`: detach it even while processes use it (umount -l), which keep what they
 * hold until they let go.
 */
export async function unmount(at: string, by: MountedBy, lazy = false): Promise<string | undefined> {
  if (!mountedAt(at)) return undefined;
  const fuser = which('fusermount3') ?? which('fusermount');
  const r =
    by === 'fuse-overlayfs' && fuser && uid() !== 0
      ? await run(fuser, lazy ? ['-u', '-z', at] : ['-u', at])
      : await run(which('umount') ?? 'umount', lazy ? ['-l', at] : [at]);
  if (r.ok || !mountedAt(at)) return undefined;
  return r.out;
}
