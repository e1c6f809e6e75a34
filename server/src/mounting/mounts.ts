/**
 * The mounts this server holds for its windows, kept in the runtime directory's state file
 * (state.ts) with every other server's: one mount per stack, whoever asks for it — a second
 * window on the same stack adopts the mount instead of mounting it again, so two mounts never
 * write the same upper. The last holder to let go unmounts. A server that shuts down cleanly
 * (a window reloading, an extension host restarting because its first folder changed) leaves
 * its mounts lingering for LINGER_MS, long enough for the next server to adopt them, and
 * starts a detached reaper (reaper.ts) that unmounts what nobody adopted; so does a server that
 * exits because its window died first (a reload that ended the extension host before the
 * shutdown reached the server), and until it has, a holder whose server still runs counts as
 * holding. Mounts whose holders died with their servers (server and VS Code killed) are removed
 * at the next start, with any mount of the runtime directory the state does not know.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createError, readMountinfo } from '../overlay/index';
import { mountedAt, mountFuse, mountKernel, mountStack, unmount, type Stack } from './mounters';
import { ensureRuntimeDir, mountPointOf, runtimeDirPath, stackHash } from './runtimeDir';
import {
  holds,
  isAlive,
  isLeaving,
  sameHolder,
  sameWindow,
  withState,
  withStateSync,
  type Holder,
  type MountedBy,
  type MountRecord,
  type State,
} from './state';

/** How long a cleanly released mount waits to be adopted (OVERLAYWS_MOUNT_LINGER_MS overrides). */
export const LINGER_MS = Number(process.env.OVERLAYWS_MOUNT_LINGER_MS ?? 30_000);
/** How often held mounts are checked (someone may unmount them). */
const POLL_MS = 2000;

export interface HeldMount {
  path: string;
  by: MountedBy;
  reason: string;
  /** Mounted before this server asked (another window, or a server before a restart). */
  adopted: boolean;
}

export interface MountEvents {
  /** A held mount disappeared (unmounted by someone else). */
  lost: [path: string, message: string];
  log: [string];
}

export interface MountUser {
  pid: number;
  /** The program's name (and its script, for an interpreter). */
  name: string;
  /** Only its current directory is inside (no open file). */
  cwdOnly: boolean;
  text: string;
}

/** Interactive shells: a terminal whose current directory is inside a mount may write through it. */
const SHELLS = new Set(['bash', 'sh', 'dash', 'zsh', 'fish', 'ksh', 'tcsh', 'csh', 'ash']);

/** Processes using something under `dir`: their current directory or an open file. */
export function usersOf(dir: string): string[] {
  return mountUsers(dir).map((u) => u.text);
}

export function mountUsers(dir: string): MountUser[] {
  const out: MountUser[] = [];
  const inside = (p: string) => p === dir || p.startsWith(dir + '/');
  for (const pid of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const what: string[] = [];
    try {
      if (inside(fs.readlinkSync(`/proc/${pid}/cwd`))) what.push('current directory');
    } catch {
      /* gone, or not ours */
    }
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (inside(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) {
            what.push('open file');
            break;
          }
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* not ours */
    }
    if (what.length === 0) continue;
    let comm = '?';
    try {
      // The program's name as it was started (node's threads rename the main one "MainThread").
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const script = argv.slice(1).find((a) => !a.startsWith('-'));
      comm = [path.basename(argv[0] ?? '?'), script ? path.basename(script) : ''].filter(Boolean).join(' ');
    } catch {
      /* gone */
    }
    out.push({ pid: Number(pid), name: comm, cwdOnly: what.length === 1 && what[0] === 'current directory', text: `${comm} (pid ${pid}: ${what.join(', ')})` });
  }
  return out;
}

function rmdirQuiet(p: string): void {
  try {
    fs.rmdirSync(p);
  } catch {
    /* busy, gone or not empty: left */
  }
}

/**
 * Removes what nobody holds: records whose holders are dead and whose linger has passed, records
 * of mounts that are gone, and mounts of the runtime directory the state does not know. Runs in
 * the state's lock. Returns one log line per thing done.
 */
export async function reapStale(s: State, dir: string, now = Date.now()): Promise<string[]> {
  const log: string[] = [];
  const keep: MountRecord[] = [];
  for (const r of s.mounts) {
    r.holders = r.holders.filter(holds);
    const leaving = r.holders.filter(isLeaving);
    if (r.holders.length > 0 && leaving.length === r.holders.length && r.lingerUntil === undefined) {
      // A window just gone (a reload ended its extension host first): its server exits within
      // seconds and then lets go itself, leaving the mount to linger for the next server.
      log.push(`${r.path}: its window is gone, its server (pid ${leaving.map((h) => h.server).join(', ')}) not yet: left for it to let go`);
    }
    if (r.remounting && isAlive(r.remounting)) {
      keep.push(r);
      continue;
    }
    delete r.remounting;
    if (!mountedAt(r.path)) {
      log.push(`${r.path} is no longer mounted: forgotten`);
      rmdirQuiet(r.path);
      continue;
    }
    if (r.holders.length > 0 || (r.lingerUntil !== undefined && r.lingerUntil > now)) {
      keep.push(r);
      continue;
    }
    const err = await unmount(r.path, r.by);
    if (err) {
      log.push(`${r.path}: nobody holds it, but it cannot be unmounted: ${err}; left mounted (${usersOf(r.path).join(', ') || 'no process found using it'})`);
      keep.push(r);
      continue;
    }
    rmdirQuiet(r.path);
    log.push(`${r.path}: unmounted (${r.lingerUntil !== undefined ? 'released, and not adopted in time' : 'its holders are gone'})`);
  }
  s.mounts = keep;
  // Mounts directly under the runtime directory that no record names (a state file lost or
  // written by a crashed version): ours by place, held by nobody.
  for (const e of readMountinfo()) {
    if (path.dirname(e.mountPoint) !== dir || keep.some((r) => r.path === e.mountPoint)) continue;
    const err = await unmount(e.mountPoint, e.fstype === 'overlay' ? 'kernel' : 'fuse-overlayfs');
    if (!err) rmdirQuiet(e.mountPoint);
    log.push(`${e.mountPoint}: a mount of the runtime directory no record names: ${err ? `cannot be unmounted: ${err}` : 'unmounted'}`);
  }
  return log;
}

export class MountManager extends EventEmitter<MountEvents> {
  /** Mount points this server holds, by the overlay names it holds them for. */
  private readonly held = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private dirCache: string | undefined;

  constructor(
    private readonly holder: Holder,
    private readonly dirPath = runtimeDirPath(),
  ) {
    super();
  }

  private get dir(): string {
    this.dirCache ??= ensureRuntimeDir(this.dirPath);
    return this.dirCache;
  }

  get runtimeDir(): string {
    return this.dirPath;
  }

  /** The mount point held for overlay `name`, if any. */
  heldFor(name: string): string | undefined {
    return this.held.get(name);
  }

  /** Removes stale mounts (dead holders, lapsed lingers, unknown mounts of the runtime dir). */
  async cleanup(): Promise<void> {
    if (!fs.existsSync(this.dirPath)) return;
    for (const line of await withState(this.dir, (s) => reapStale(s, this.dir))) this.emit('log', `[mount] ${line}`);
  }

  /**
   * Mounts overlay `name` (or adopts the mount of the same stack that another window or an
   * earlier server holds). A stack that cannot be mounted is no error: the answer says why.
   */
  async mount(name: string, stack: Stack): Promise<{ mount?: HeldMount; failure?: string }> {
    const current = this.held.get(name);
    const hash = stackHash(stack);
    if (current && path.basename(current).endsWith(`.${hash}`) && mountedAt(current)) {
      const rec = await withState(this.dir, (s) => s.mounts.find((r) => r.path === current));
      if (rec) return { mount: { path: rec.path, by: rec.by, reason: rec.reason, adopted: true } };
    }
    if (current) await this.release(name);
    const dir = this.dir;
    const result = await withState(dir, async (s): Promise<{ mount?: HeldMount; failure?: string }> => {
      for (const line of await reapStale(s, dir)) this.emit('log', `[mount] ${line}`);
      const same = s.mounts.find((r) => r.hash === hash);
      if (same) {
        // This window now holds it through this server (an earlier server of the same window,
        // killed or restarted, no longer does: its late let-go leaves this holding alone).
        same.holders = [...same.holders.filter((h) => !sameWindow(h, this.holder)), this.holder];
        delete same.lingerUntil;
        return { mount: { path: same.path, by: same.by, reason: same.reason, adopted: true } };
      }
      const other = stack.upper ? s.mounts.find((r) => r.stack.upper === stack.upper) : undefined;
      if (other) return { failure: `not mounted: its upper directory is already mounted at ${other.path} for another stack of overlay "${other.name}"` };
      const at = mountPointOf(dir, name, stack);
      const there = mountedAt(at);
      if (there) {
        // Ours by its name and hash, though no record says so (the state was lost): adopt it.
        const by: MountedBy = there === 'overlay' ? 'kernel' : 'fuse-overlayfs';
        const reason = `${by === 'kernel' ? 'mount -t overlay' : 'fuse-overlayfs'}: found mounted at its place`;
        s.mounts.push({ path: at, name, hash, stack: pick(stack), by, reason, holders: [this.holder] });
        return { mount: { path: at, by, reason, adopted: true } };
      }
      fs.mkdirSync(at, { recursive: true, mode: 0o700 });
      const r = await mountStack(stack, at);
      if ('failure' in r) {
        rmdirQuiet(at);
        return { failure: r.failure };
      }
      s.mounts.push({ path: at, name, hash, stack: pick(stack), by: r.by, reason: r.reason, holders: [this.holder] });
      return { mount: { path: at, by: r.by, reason: r.reason, adopted: false } };
    });
    if (result.mount) {
      this.held.set(name, result.mount.path);
      this.emit('log', `[mount] overlay "${name}" ${result.mount.adopted ? 'adopted the mount' : 'mounted'} at ${result.mount.path} (${result.mount.reason})`);
      this.poll();
    } else this.emit('log', `[mount] overlay "${name}": ${result.failure}`);
    return result;
  }

  /** Lets go of overlay `name`'s mount: unmounted when no other holder is left. Answers why it could not be, if so. */
  async release(name: string): Promise<string | undefined> {
    const at = this.held.get(name);
    if (!at) return undefined;
    this.held.delete(name);
    if ([...this.held.values()].includes(at)) return undefined; // held for another name of the same stack
    const failure = await withState(this.dir, async (s) => {
      const rec = s.mounts.find((r) => r.path === at);
      if (!rec) return undefined;
      rec.holders = rec.holders.filter((h) => !sameHolder(h, this.holder) && holds(h));
      if (rec.holders.length > 0) return undefined;
      const err = await unmount(rec.path, rec.by);
      if (err) {
        const users = usersOf(rec.path);
        return `${rec.path} could not be unmounted: ${err}${users.length ? ` (in use by ${users.join(', ')})` : ''}; the next start removes it`;
      }
      s.mounts = s.mounts.filter((r) => r !== rec);
      rmdirQuiet(rec.path);
      return undefined;
    });
    this.emit('log', `[mount] overlay "${name}" let go of ${at}${failure ? `: ${failure}` : ''}`);
    return failure;
  }

  /**
   * Unmounts the mount of overlay `name`, runs `change` (which may then write the upper: no
   * mount uses it), and mounts the stack again at the same place the same way. Language
   * servers run with their current directory in the workspace folder, which keeps the mount
   * busy: when every process using it does so only through its current directory and none is
   * a shell (a terminal there could write through the old mount), the mount is detached lazily
   * (umount -l) — those processes keep seeing the overlay as it was until they change
   * directory, while every path resolves to the new mount. An open file or a shell inside
   * refuses (EBUSY, naming them).
   */
  async remount<T>(name: string, stack: Stack, change: () => Promise<T>): Promise<T> {
    const at = this.held.get(name);
    if (!at) return change();
    const dir = this.dir;
    const rec = await withState(dir, async (s) => {
      const r = s.mounts.find((m) => m.path === at);
      if (!r) return undefined;
      let err = await unmount(r.path, r.by);
      if (err) {
        const users = mountUsers(r.path);
        const blocking = users.filter((u) => !u.cwdOnly || SHELLS.has(u.name.split(' ')[0]));
        if (blocking.length === 0) {
          err = await unmount(r.path, r.by, true);
          if (!err)
            this.emit(
              'log',
              `[mount] ${r.path} detached lazily for a revert; still inside until they change directory: ${users.map((u) => u.text).join(', ') || 'nobody'}`,
            );
        }
        if (err) {
          throw createError(
            'EBUSY',
            'revert',
            r.path,
            `reverting changes the upper layer, which needs the overlay unmounted for a moment, but ${blocking.length ? `these processes use it: ${blocking.map((u) => u.text).join(', ')}` : `it is busy (${err})`}. Close them (or leave the folder in those terminals) and revert again`,
          );
        }
      }
      r.remounting = this.holder;
      return { ...r };
    });
    if (!rec) return change();
    try {
      return await change();
    } finally {
      const failure = await withState(dir, async (s) => {
        const r = s.mounts.find((m) => m.path === at);
        if (r) delete r.remounting;
        const again = rec.by === 'kernel' ? await mountKernel(stack, at) : await mountFuse(stack, at);
        if (again && r) s.mounts = s.mounts.filter((m) => m !== r);
        return again;
      });
      if (failure) {
        this.held.delete(name);
        this.emit('lost', at, `it could not be mounted again after the revert: ${failure}`);
      }
    }
  }

  /** On a clean shutdown: every held mount lingers for the next server, and a reaper takes what nobody adopts. */
  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    if (this.held.size === 0) return;
    const paths = new Set(this.held.values());
    this.held.clear();
    if ((await withState(this.dir, (s) => this.letGo(s, paths))) > 0) startReaper(this.dir);
  }

  /**
   * The same as shutdown, for a server exiting without one (process.exit from an 'exit' handler:
   * its window died first — a reload that ended the extension host before the server heard the
   * shutdown — and the language server library exits on its parent's death or a closed
   * connection). Synchronous: no event loop is left. A server killed (SIGKILL) runs no handler:
   * its mounts are a crash's, removed at the next start.
   */
  shutdownSync(): void {
    clearInterval(this.timer);
    if (this.held.size === 0 || !this.dirCache) return;
    const paths = new Set(this.held.values());
    this.held.clear();
    let lingering = 0;
    withStateSync(this.dirCache, (s) => {
      lingering = this.letGo(s, paths);
    });
    if (lingering > 0) startReaper(this.dirCache);
  }

  /** This server lets go of the mounts at `paths`: those nobody else holds linger. How many do. */
  private letGo(s: State, paths: ReadonlySet<string>): number {
    let n = 0;
    for (const r of s.mounts) {
      if (!paths.has(r.path)) continue;
      r.holders = r.holders.filter((h) => !sameHolder(h, this.holder) && holds(h));
      if (r.holders.length === 0) {
        r.lingerUntil = Date.now() + LINGER_MS;
        n++;
      }
    }
    return n;
  }

  /** Notices held mounts that someone else unmounted. */
  private poll(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.held.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      for (const [name, at] of [...this.held]) {
        if (mountedAt(at)) continue;
        void withState(this.dir, (s) => s.mounts.find((r) => r.path === at)?.remounting !== undefined).then((remounting) => {
          if (remounting || mountedAt(at) || this.held.get(name) !== at) return;
          this.held.delete(name);
          this.emit('lost', at, `${at} was unmounted outside VS Code`);
        });
      }
    }, POLL_MS);
    this.timer.unref();
  }
}

function pick(stack: Stack): MountRecord['stack'] {
  return { lower: stack.lower, upper: stack.upper, work: stack.work, whiteouts: stack.whiteouts, userxattr: stack.userxattr };
}

/** A detached process that unmounts lingering mounts nobody adopted (reaper.ts), outliving this server. */
function startReaper(dir: string): void {
  const script = path.join(__dirname, 'reaper.js');
  if (!fs.existsSync(script)) return;
  // cwd '/': a process whose current directory is inside a mount keeps it busy.
  const child = spawn(process.execPath, [script, dir], { cwd: '/', detached: true, stdio: 'ignore', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
  child.unref();
}
