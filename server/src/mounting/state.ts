/**
 * The state file of the runtime directory (`mounts.json`): which stack each mount serves, how
 * it was mounted, and who holds it. A holder is a process that keeps the mount in use — the
 * extension host of a window (the LSP `processId`), or the server itself when it has no
 * parent to name — known by pid and start time, so a reused pid is not taken for it. Every
 * change happens under a lock (proper-lockfile), read and written whole, atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lockfile from 'proper-lockfile';
import type { WhiteoutFormat } from '../overlay';

export type MountedBy = 'kernel' | 'fuse-overlayfs';

export interface Holder {
  pid: number;
  /** Start time of the process (field 22 of /proc/PID/stat). */
  start: string;
  /** The server process that holds the mount for it. */
  server: number;
  /**
   * The server's start time. While the window is gone but its server still runs, the server is
   * on its way out (it exits when its parent dies) and lets go itself: the mount lingers then.
   */
  serverStart?: string;
}

export interface MountRecord {
  /** The mount point. */
  path: string;
  /** The overlay name it was mounted for (the path encodes it). */
  name: string;
  hash: string;
  stack: { lower: string[]; upper?: string; work?: string; whiteouts: WhiteoutFormat; userxattr: boolean };
  by: MountedBy;
  /** Why this way (status item, log). */
  reason: string;
  holders: Holder[];
  /**
   * Epoch ms: its last holder shut down cleanly (a window reload, an extension host restarted
   * because its first folder changed): kept until then for the next server to adopt.
   */
  lingerUntil?: number;
  /** Taken down for a moment by this holder (a revert changes the upper), to be mounted again. */
  remounting?: Holder;
}

export interface State {
  mounts: MountRecord[];
}

export const STATE_FILE = 'mounts.json';

/** The process `pid`'s start time, or undefined when there is no such process. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function holderOf(pid: number, server = process.pid): Holder | undefined {
  const start = startTimeOf(pid);
  return start === undefined ? undefined : { pid, start, server, serverStart: startTimeOf(server) };
}

export function isAlive(h: Holder): boolean {
  return startTimeOf(h.pid) === h.start;
}

/** Whether `h` still holds its mounts: its window is alive, or its server has yet to let go (isLeaving). */
export function holds(h: Holder): boolean {
  return isAlive(h) || isLeaving(h);
}

/** A holder whose window is gone while its server still runs (and will let go when it exits). */
export function isLeaving(h: Holder): boolean {
  return !isAlive(h) && h.serverStart !== undefined && h.server !== process.pid && startTimeOf(h.server) === h.serverStart;
}

/**
 * The same holding: the same window through the same server. A window whose server was
 * restarted (a crash, Restart Server) holds its mounts through the new server; the old one,
 * letting go late, must not take the new one's holding with it.
 */
export function sameHolder(a: Holder, b: Holder): boolean {
  return sameWindow(a, b) && a.server === b.server;
}

/** The same window (extension host), whichever server held for it. */
export function sameWindow(a: Holder, b: Holder): boolean {
  return a.pid === b.pid && a.start === b.start;
}

/** The state as it is on disk now (no lock: for readers that only look). */
export function readState(dir: string): State {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), 'utf8')) as State;
    return Array.isArray(s.mounts) ? s : { mounts: [] };
  } catch {
    return { mounts: [] };
  }
}

function writeState(dir: string, s: State): void {
  const file = path.join(dir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 1), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * withState for a process about to exit (no event loop left): the lock taken synchronously,
 * tried again for up to `waitMs`. False when it could not be taken.
 */
export function withStateSync(dir: string, fn: (s: State) => void, waitMs = 3000): boolean {
  const file = path.join(dir, STATE_FILE);
  if (!fs.existsSync(file)) return false;
  const until = Date.now() + waitMs;
  for (;;) {
    let release: () => void;
    try {
      release = lockfile.lockSync(file, { realpath: false, stale: 15_000 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > until) return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      continue;
    }
    try {
      const s = readState(dir);
      fn(s);
      writeState(dir, s);
      return true;
    } finally {
      release();
    }
  }
}

/** Runs `fn` on the state under the lock and writes what it leaves. */
export async function withState<T>(dir: string, fn: (s: State) => T | Promise<T>): Promise<T> {
  const file = path.join(dir, STATE_FILE);
  if (!fs.existsSync(file)) fs.writeFileSync(file, JSON.stringify({ mounts: [] }), { mode: 0o600, flag: 'a' });
  const release = await lockfile.lock(file, { realpath: false, stale: 15_000, retries: { retries: 200, minTimeout: 20, maxTimeout: 200 } });
  try {
    const s = readState(dir);
    const out = await fn(s);
    writeState(dir, s);
    return out;
  } finally {
    await release();
  }
}
