/**
 * The OCI image-spec (AUFS) format: a whiteout is an empty file `.wh.NAME` beside the deleted
 * name, an opaque directory holds `.wh..wh..opq`; other `.wh..wh.*` names are AUFS bookkeeping.
 * A character device 0/0 (the kernel's whiteout) counts as a whiteout here too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lstatOrUndefined, type LayerStat } from '../lstat';
import { encodePath, readdirEntries } from '../names';
import type { EntryVerdict, LayerDir, RawEvent, Format, FormatModule } from './format';
import { isWhiteoutDevice, whiteoutDeviceAt } from './kernel';

/** The prefix of whiteouts, as OCI layer tarballs spell them whatever the format on disk. */
export const WH = '.wh.';
/** Names with this prefix are AUFS bookkeeping, not whiteouts. */
export const WH_META = '.wh..wh.';
/** The opaque marker inside a directory. */
export const OPAQUE = '.wh..wh..opq';

/** The name a `.wh.` entry whites out, undefined for bookkeeping (`.wh..wh.*`, the opaque marker included). */
export function whitedOutName(entry: string): string | undefined {
  return entry.startsWith(WH_META) ? undefined : entry.slice(WH.length);
}

function exists(p: string): boolean {
  return lstatOrUndefined(p) !== undefined;
}

function unlinkIfThere(p: string): void {
  try {
    fs.unlinkSync(encodePath(p));
  } catch {
    /* not there */
  }
}

class OciFormat implements Format {
  readonly name = 'oci';

  whitesOut(dir: LayerDir, name: string, st: LayerStat | undefined): boolean {
    return st === undefined ? exists(dir.real + '/' + WH + name) : isWhiteoutDevice(st);
  }

  stopsMerge(dir: LayerDir, child: LayerDir, name: string): boolean {
    // A directory beside its own whiteout is shown, but nothing below it merges in.
    return this.isOpaque(child.real) || exists(dir.real + '/' + WH + name);
  }

  isOpaque(dirReal: string): boolean {
    return exists(dirReal + '/' + OPAQUE);
  }

  entries(dir: LayerDir): (d: fs.Dirent) => EntryVerdict {
    return (d) => {
      if (d.name.startsWith(WH)) return whitedOutName(d.name) ?? null;
      if (!d.isCharacterDevice()) return undefined;
      const st = lstatOrUndefined(dir.real + '/' + d.name);
      if (!st) return null;
      return isWhiteoutDevice(st) ? d.name : st;
    };
  }

  hasWhiteout(dir: string, name: string): boolean {
    return exists(dir + '/' + WH + name);
  }

  whiteout(dir: string, name: string): void {
    fs.writeFileSync(encodePath(dir + '/' + WH + name), '', { flag: 'w', mode: 0o600 });
    unlinkIfThere(dir + '/' + name);
  }

  clearWhiteout(dir: string, name: string): void {
    unlinkIfThere(dir + '/' + WH + name);
  }

  renameOver(from: string, dir: string, name: string): void {
    fs.renameSync(encodePath(from), encodePath(dir + '/' + name));
    this.clearWhiteout(dir, name);
  }

  mkdirOverWhiteout(dir: string, name: string, mode: number): void {
    const dest = dir + '/' + name;
    fs.mkdirSync(encodePath(dest), { mode });
    this.setOpaque(dest);
    this.clearWhiteout(dir, name);
  }

  setOpaque(dirReal: string): void {
    fs.writeFileSync(encodePath(dirReal + '/' + OPAQUE), '', { mode: 0o600 });
  }

  clearInside(dirReal: string): void {
    for (const d of readdirEntries(dirReal)) if (d.name.startsWith(WH)) fs.unlinkSync(encodePath(dirReal + '/' + d.name));
  }

  classifyEvent(p: string, kind: 'add' | 'change' | 'unlink', real: string, upper: boolean): RawEvent {
    const base = path.posix.basename(p);
    if (!base.startsWith(WH)) return { path: p, kind: kind === 'add' && upper && whiteoutDeviceAt(real) ? 'whiteout' : kind };
    const dir = path.posix.dirname(p);
    if (base === OPAQUE) return { path: dir, kind: 'opaque' };
    // A whiteout appearing deletes the name; one going away brings the name back.
    return { path: (dir === '/' ? '' : dir) + '/' + base.slice(WH.length), kind: kind === 'unlink' ? 'add' : 'whiteout' };
  }

  fromOciWhiteout(dir: string, name: string): void {
    fs.writeFileSync(encodePath(dir + '/' + WH + name), '', { mode: 0o644 });
  }

  fromOciOpaque(dirReal: string): void {
    fs.writeFileSync(encodePath(dirReal + '/' + OPAQUE), '', { mode: 0o644 });
  }
}

export const oci: FormatModule = {
  name: 'oci',
  description: 'Empty .wh.NAME files and .wh..wh..opq (OCI image layers).',
  detect: (d) => d.name.startsWith(WH),
  create: () => new OciFormat(),
};
