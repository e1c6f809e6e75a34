/**
 * What a write does to a file's privileges: the kernel's rule, in one place for every write
 * path (the engine's writes, handles, appends and truncates; the server's and the CLI's, which
 * go through the engine; whole-file writes through a live kernel mount).
 *
 * Read in Linux — fs/inode.c file_remove_privs / dentry_needs_remove_privs; fs/attr.c
 * setattr_should_drop_suidgid / setattr_should_drop_sgid; security/commoncap.c
 * cap_inode_need_killpriv / cap_inode_killpriv; overlayfs calls file_remove_privs on its own
 * file, with the writer's credentials, before it passes a write down (fs/backing-file.c) — and
 * measured on kernel mounts as root and as uid 65534 (test/kernel/privileges.test.ts,
 * test/safety/writerPrivileges.test.ts):
 *
 * - A DATA WRITE removes privileges: a write(2) of at least one byte (an append too), a
 *   truncate or ftruncate to any size (the same size too), an open with O_TRUNC — so every
 *   whole-file write. Nothing is removed by an open for writing without a write, a write of
 *   0 bytes, chmod, utimes, rename, or a copy-up by itself: the kernel copies
 *   security.capability, setuid and setgid up unchanged (with the mounter's credentials).
 * - A data write removes the file's capabilities (the security.capability xattr), whoever
 *   writes, root included.
 * - For a regular file and a writer without CAP_FSETID it clears setuid, and setgid when
 *   group-execute is set or when the writer is not in the file's group (setgid without
 *   group-execute is a locking mark, kept for a member of the group). A writer with CAP_FSETID
 *   (root) keeps both.
 */
import * as fs from 'node:fs';
import { encodePath } from './names';
import { inGroup } from './permission';
import { getXattr, removeXattr } from './xattr';

export const CAPABILITY_XATTR = 'security.capability';

const CAP_FSETID = 4n;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;
let fsetid: boolean | undefined;

/** Does this process hold CAP_FSETID (its effective set in /proc/self/status; else: is it root)? */
export function writerHasFsetid(): boolean {
  if (fsetid === undefined) {
    try {
      const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
      fsetid = m ? (BigInt('0x' + m[1]) & (1n << CAP_FSETID)) !== 0n : process.geteuid?.() === 0;
    } catch {
      fsetid = process.geteuid?.() === 0;
    }
  }
  return fsetid;
}

/** The permission bits (0..0o7777) a file with `st` is left with after a data write by this process. */
export function modeAfterWrite(st: { mode: number; gid: number }): number {
  let mode = st.mode & 0o7777;
  if ((st.mode & fs.constants.S_IFMT) !== fs.constants.S_IFREG || writerHasFsetid()) return mode;
  mode &= ~S_ISUID;
  if ((mode & S_ISGID) !== 0 && ((mode & S_IXGRP) !== 0 || !inGroup(st.gid))) mode &= ~S_ISGID;
  return mode;
}

/** Does an xattr of a file stay through a data write? */
export function keptByWrite(xattrName: string): boolean {
  return xattrName !== CAPABILITY_XATTR;
}

/**
 * The rule applied to `real`, a regular file this process has just written in place (a data
 * write). The filesystem applies the same rule to our own writes already; this makes the result
 * the kernel's whatever the upper filesystem does. A change the filesystem would refuse us (a
 * file not ours that it left as it was) is left: never more than the kernel would do.
 */
export function dropPrivilegesAfterWrite(real: string): void {
  const st = fs.lstatSync(encodePath(real));
  if (!st.isFile()) return;
  const mode = modeAfterWrite(st);
  if (mode !== (st.mode & 0o7777)) {
    try {
      fs.chmodSync(encodePath(real), mode);
    } catch {
      /* not ours: the filesystem's own rule is what stands */
    }
  }
  if (getXattr(real, CAPABILITY_XATTR) !== undefined) removeXattr(real, CAPABILITY_XATTR);
}
