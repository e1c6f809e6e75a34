/**
 * What identities the stale copy of a copied-up file has, i.e. what a process that still
 * reads it holds:
 *   - the lower file itself (its device and inode), for processes that opened or mapped it
 *     by its real path;
 *   - the file as every kernel overlay mount that shows it presents it (the overlay's device,
 *     the inode it reports), for processes that opened or mapped it through such a mount —
 *     a container whose image has that layer, or the kernel mount of this very stack (a live
 *     mount: there the kernel made the copy-up, and the merged file keeps its device and
 *     inode, so "the merged file as it was before the copy-up" is the merged file).
 * A mount other than the stack's own counts only where it still shows this lower file
 * (looked up with the engine's lookup on the mount's layers): a container that copied the
 * file up itself, or hides it, reads its own copy.
 */
import * as fs from 'node:fs';
import { LayerView } from '../overlay/lookup';
import { encodePath, parseMountinfoLine, type ResolvedStack } from '../overlay/index';
import { whiteoutFormat } from '../overlay/formats';
import { parseMountinfo, pathInFilesystem, type Mount } from './mountinfo';
import type { FileId } from './procScan';

export interface CopiedFile {
  /** The file's path in the overlay ('/a/b'). */
  path: string;
  /** Its lower copy (real path, as the engine names it), and the lower layer that holds it. */
  lower?: { realPath: string; layerRoot: string };
  /** The merged directory of the kernel mount of this stack, when it is mounted (a live mount). */
  merged?: string;
}

function statOf(p: string | Buffer): fs.BigIntStats | undefined {
  try {
    return fs.statSync(p, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

const sameFile = (a: { dev: bigint | number; ino: bigint | number }, b: { dev: bigint | number; ino: bigint | number }): boolean =>
  BigInt(a.dev) === BigInt(b.dev) && BigInt(a.ino) === BigInt(b.ino);

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** One overlay mount, parsed once per mountinfo text. */
interface OverlayMount {
  dev: number;
  merged: string;
  stack: ResolvedStack;
  /** dev:ino of each layer directory, upper first. */
  layerIds: string[];
}

let cached: { text: string; mounts: Mount[]; overlays: OverlayMount[] } | undefined;

function overlayMounts(text: string, mounts: Mount[]): OverlayMount[] {
  if (cached?.text === text) return cached.overlays;
  const overlays: OverlayMount[] = [];
  for (const m of mounts) {
    if (m.fstype !== 'overlay') continue;
    let spec;
    try {
      spec = parseMountinfoLine(m.line);
    } catch {
      continue;
    }
    // Layers named relative to the mounter's working directory cannot be found again.
    if (!spec.lower.every((d) => d.startsWith('/')) || (spec.upper !== undefined && !spec.upper.startsWith('/'))) continue;
    const lower = spec.lower.map(realOrSelf);
    const upper = spec.upper === undefined ? undefined : realOrSelf(spec.upper);
    const layerIds = [upper, ...lower].map((d) => {
      const st = d === undefined ? undefined : statOf(d);
      return st ? `${st.dev}:${st.ino}` : '';
    });
    overlays.push({
      dev: m.dev,
      merged: m.mountPoint,
      stack: {
        lower,
        upper,
        work: undefined,
        whiteouts: 'kernel',
        userxattr: spec.userxattr === true,
        merged: m.mountPoint,
        format: whiteoutFormat('kernel', { userxattr: spec.userxattr === true }),
      },
      layerIds,
    });
  }
  cached = { text, mounts, overlays };
  return overlays;
}

/** Does overlay mount `o` show, at `path`, the very file `lower`? */
function shows(o: OverlayMount, path: string, lower: fs.BigIntStats): boolean {
  try {
    const comps = path.split('/').filter((c) => c !== '');
    const top = new LayerView(o.stack).resolve(comps, false, 'holders', path).top;
    return top !== undefined && sameFile(top.st, lower);
  } catch {
    return false;
  }
}

/** The identities of the stale copy of `file` (see above); empty when none can be found. */
export function holderTargets(file: CopiedFile): FileId[] {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    text = '';
  }
  const mounts = cached?.text === text ? cached.mounts : parseMountinfo(text);
  const out: FileId[] = [];
  const add = (id: FileId): void => {
    if (!out.some((o) => o.dev === id.dev && o.ino === id.ino)) out.push(id);
  };
  const lower = file.lower ? statOf(encodePath(file.lower.realPath)) : undefined;
  if (file.lower && lower) {
    const dev = Number(lower.dev);
    add({ dev, ino: lower.ino.toString(), fsPath: pathInFilesystem(realOrSelf(file.lower.realPath), dev, mounts) });
  }
  const layer = file.lower ? statOf(file.lower.layerRoot) : undefined;
  const layerId = layer ? `${layer.dev}:${layer.ino}` : undefined;
  const ownMerged = file.merged ? realOrSelf(file.merged) : undefined;
  for (const o of overlayMounts(text, mounts)) {
    const own = ownMerged !== undefined && o.merged === ownMerged;
    if (!own && !(lower && layerId && o.layerIds.includes(layerId) && shows(o, file.path, lower))) continue;
    const merged = statOf(encodePath(o.merged + file.path));
    if (merged && Number(merged.dev) === o.dev) add({ dev: o.dev, ino: merged.ino.toString() });
    // Layers on one filesystem: the overlay reports the lower file's inode (also where the
    // merged dir cannot be reached from here, or a copy-up without an origin changed it).
    if (lower) add({ dev: o.dev, ino: lower.ino.toString() });
  }
  return out;
}
