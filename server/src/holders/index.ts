/**
 * The processes that still read the stale copy of copied-up files: the identities of each
 * stale copy (targets.ts), one pass over /proc for all of them (procScan.ts), and each
 * process named — pid, name, command line, user, start time, and the Docker container it
 * runs in (containers.ts). Plain Node: used by the server after copy-ups and by the CLI.
 */
import * as fs from 'node:fs';
import type { Holder } from '../../../shared/src/types';
import { ContainerNames, containerIdOf } from './containers';
import { fileKey, scanProcesses, type How, type ScanOptions } from './procScan';
import { holderTargets, type CopiedFile } from './targets';

export type { CopiedFile } from './targets';
export type { Holder } from '../../../shared/src/types';

export interface HolderReport {
  /** For each file asked about, in order: the processes that hold its stale copy, by pid. */
  holders: Holder[][];
  /** Processes that could not be inspected (another user's, for a scan that is not root's). */
  uninspectable: number;
}

/** /proc/PID/stat field 22, in clock ticks after boot. */
function startTimeOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A process named: undefined when it ended meanwhile. */
function describe(pid: number, how: How): Holder | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const name = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '');
    const holder: Holder = {
      pid,
      how,
      name,
      command: args === '' ? `[${name}]` : args.split('\0').join(' '),
      uid: fs.statSync(`/proc/${pid}`).uid,
      startTime: startTimeOf(stat),
    };
    const containerId = containerIdOf(pid);
    if (containerId) holder.containerId = containerId;
    return holder;
  } catch {
    return undefined;
  }
}

export interface FindOptions extends ScanOptions {
  /** Docker names, cached across calls (a server keeps one). */
  containers?: ContainerNames;
}

/** The holders of the stale copy of each of `files`, found in one pass over /proc. */
export async function findHolders(files: readonly CopiedFile[], options: FindOptions = {}): Promise<HolderReport> {
  const targets = files.map((f) => holderTargets(f).map((t) => ({ ...t, key: fileKey(t.dev, t.ino) })));
  const scan = await scanProcesses(targets.flat(), options);
  const holders: Holder[][] = targets.map(() => []);
  const byPid = new Map<number, Holder | undefined>();
  for (const m of scan.matches) {
    targets.forEach((ids, i) => {
      const hows = ids.map((t) => m.found.get(t.key)).filter((h): h is How => h !== undefined);
      if (hows.length === 0) return;
      const how: How = hows.includes('mapped') ? 'mapped' : 'open';
      if (!byPid.has(m.pid)) byPid.set(m.pid, describe(m.pid, how));
      const h = byPid.get(m.pid);
      if (h) holders[i].push({ ...h, how });
    });
  }
  const ids = [...byPid.values()].map((h) => h?.containerId).filter((id): id is string => id !== undefined);
  if (ids.length > 0) {
    const names = await (options.containers ?? new ContainerNames()).names(ids);
    for (const list of holders) for (const h of list) if (h.containerId && names.has(h.containerId)) h.container = names.get(h.containerId);
  }
  for (const list of holders) list.sort((a, b) => a.pid - b.pid);
  return { holders, uninspectable: scan.uninspectable };
}
