/**
 * The per-user runtime directory the server mounts overlays under, and the mount point of a
 * stack in it. Never a user's own directory: `$XDG_RUNTIME_DIR/overlayws`, else
 * `/run/user/UID/overlayws` when that directory exists and is ours, else a 0700 directory
 * `overlayws-UID` in the temp dir. Whichever it is must be a real directory (not a symlink)
 * owned by us and closed to others, or nothing is mounted there.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mountPointName } from '../../../shared/src/mountPoints';
import { createError, type ResolvedStack } from '../overlay';

function uid(): number {
  return process.getuid?.() ?? 0;
}

function ownedDir(dir: string): boolean {
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === uid();
  } catch {
    return false;
  }
}

/** Where the runtime directory is (not created). */
export function runtimeDirPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg) && ownedDir(xdg)) return path.join(xdg, 'overlayws');
  const run = `/run/user/${uid()}`;
  if (ownedDir(run)) return path.join(run, 'overlayws');
  return path.join(os.tmpdir(), `overlayws-${uid()}`);
}

/** The runtime directory, made if missing (mode 0700); throws EACCES when it exists but is not safe to use. */
export function ensureRuntimeDir(dir = runtimeDirPath()): string {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid() || (st.mode & 0o077) !== 0) {
    throw createError(
      'EACCES',
      'mount',
      dir,
      `the runtime directory ${dir} is not a directory of this user (uid ${uid()}) closed to others (mode 0700): not mounting there`,
    );
  }
  return dir;
}

/** 12 hex digits naming a stack: its layers, in order, and its format. */
export function stackHash(stack: Pick<ResolvedStack, 'lower' | 'upper' | 'work' | 'whiteouts' | 'userxattr'>): string {
  const key = JSON.stringify([stack.lower, stack.upper ?? null, stack.work ?? null, stack.whiteouts, stack.userxattr]);
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** Where overlay `name` with this stack is mounted. */
export function mountPointOf(dir: string, name: string, stack: Parameters<typeof stackHash>[0]): string {
  return path.join(dir, mountPointName(name, stackHash(stack)));
}
