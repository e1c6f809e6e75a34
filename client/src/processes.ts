/**
 * Processes, as the stale-reader notice acts on them (plain Node, no VS Code): which ones
 * are this VS Code's own, and sending SIGHUP to a holder the server named — only to the very
 * process it named (a pid is reused: its start time must match) and only where we may signal it.
 * Linux /proc, as the server that named them.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import type { Holder } from '../../shared/src/protocol';

interface Proc {
  ppid: number;
  startTime: number;
}

/** pid, ppid and start time of `pid` (/proc/PID/stat), undefined when it is gone. */
function procOf(pid: number): Proc | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

function exeOf(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

function argsOf(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/**
 * This VS Code's own processes, which a notice leaves out: the extension host (this process),
 * the VS Code processes above it that run the same executable (the server of VS Code for the
 * Web or a remote, Electron's main process), their helpers that run it too with a `--type=`
 * argument (renderers, the pty host, the file watcher, other extension hosts), and the overlay
 * server with every process below it. A terminal's shell and what runs in it are not VS Code's:
 * they run another executable, below the pty host.
 */
export function ownProcesses(serverPid: number | undefined, self = process.pid): Set<number> {
  const parents = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = procOf(Number(e));
    if (p) parents.set(Number(e), p.ppid);
  }
  const own = new Set<number>([self]);
  const exe = exeOf(self);
  const chain = [self];
  for (let p = parents.get(self); p !== undefined && p > 1 && exe !== undefined && exeOf(p) === exe; p = parents.get(p)) chain.push(p);
  for (const p of chain) own.add(p);
  const inChain = new Set(chain);
  for (const [pid, ppid] of parents) {
    if (inChain.has(ppid) && exeOf(pid) === exe && argsOf(pid).some((a) => a.startsWith('--type='))) own.add(pid);
  }
  if (serverPid !== undefined) {
    const below = [serverPid];
    own.add(serverPid);
    while (below.length > 0) {
      const p = below.pop() as number;
      for (const [pid, ppid] of parents) {
        if (ppid === p && !own.has(pid)) {
          own.add(pid);
          below.push(pid);
        }
      }
    }
  }
  return own;
}

/** What became of a SIGHUP: sent; refused (we may not signal it); the process ended, or its pid now names another one. */
export type HangupOutcome = 'sent' | 'not permitted' | 'gone';

/** SIGHUP to the process the server named, if it is still that process and ours to signal. */
export function hangUp(h: Pick<Holder, 'pid' | 'startTime'>): HangupOutcome {
  const now = procOf(h.pid);
  if (!now || now.startTime !== h.startTime) return 'gone';
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM' ? 'not permitted' : 'gone';
  }
  try {
    process.kill(h.pid, 'SIGHUP');
    return 'sent';
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM' ? 'not permitted' : 'gone';
  }
}

/** `docker restart NAME`: undefined when done, else Docker's message. */
export function restartContainer(name: string, docker = 'docker'): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(docker, ['restart', name], { timeout: 120_000, encoding: 'utf8' }, (err, _stdout, stderr) => {
      resolve(err ? (stderr || err.message).trim() : undefined);
    });
  });
}
