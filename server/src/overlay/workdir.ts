/**
 * The work directory: temporary names for copy-up and atomic writes live in
 * `<work>/work/` (the kernel's own work subdirectory), then are renamed into upper.
 */
import * as fs from 'node:fs';
import { recoverInPlaceWrites } from './inPlaceWrite';
import { encodePath, fromPlainPath } from './names';

const PREFIX = '#ovlws-';
let counter = 0;

export class WorkDir {
  readonly dir: string;

  constructor(work: string) {
    this.dir = fromPlainPath(work) + '/work';
    fs.mkdirSync(encodePath(this.dir), { recursive: true, mode: 0o700 });
  }

  tempName(): string {
    return `${this.dir}/${PREFIX}${process.pid}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /**
   * Remove leftovers of dead processes (a crash mid copy-up or mid write); live processes' temp
   * files stay. An in-place write they left unfinished gets its old content back first.
   */
  cleanStale(): number {
    let removed = 0;
    let names: string[];
    try {
      names = fs.readdirSync(encodePath(this.dir));
    } catch {
      return 0;
    }
    const dead = names.filter((name) => {
      if (!name.startsWith(PREFIX)) return false;
      const pid = Number(name.slice(PREFIX.length).split('-')[0]);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) return false;
      return pid !== process.pid;
    });
    const keep = recoverInPlaceWrites(this.dir, dead);
    for (const name of dead) {
      if (keep.has(name)) continue;
      fs.rmSync(encodePath(`${this.dir}/${name}`), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}
