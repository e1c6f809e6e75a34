/**
 * Which layers the watcher watches, and how: **watch what can change, where someone is
 * looking** (issue 17).
 *
 * - A layer that cannot change is not watched: a Docker overlay2 layer directory, a layer
 *   of the image layer cache, a lower of an overlay mounted now (the kernel does not allow
 *   changing the lowers of a mounted overlay).
 * - Another lower layer is followed: only the directories VS Code watches or the user
 *   looks at (overlay/watch), never whole trees. A change in a directory nobody follows is
 *   seen at its next listing (the listing's stat check, overlay/lookup.ts).
 * - The upper is watched whole while it is small; a big one is followed like a lower.
 * - overlay.watchLowerLayers: 'auto' is the above; 'always' watches every lower whole,
 *   'never' none (the upper as in 'auto').
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WatchLowerLayers, Watching } from '../../shared/src/protocol';
import { listOverlayMounts } from './overlay/index';
import { cacheRoot } from './image/layerCache';

export type { WatchLowerLayers };
export type LayerMode = Watching.Mode;

export interface LayerPlan {
  mode: LayerMode;
  reason: string;
}

/** Limits of what is watched, per overlay. Tests lower them. */
export const watchTuning = {
  /** An upper of more entries than this is followed, not watched whole. */
  upperWholeEntries: 20_000,
  /** ... nor of more directories (each costs a watch of its own, ~13 KiB). */
  upperWholeDirs: 2_000,
  /** Real directories watched for the followed layers of one overlay, over all layers. */
  followedDirs: 2_048,
  /** overlay/watch requests kept per overlay; beyond, the oldest non-recursive ones go. */
  requests: 1_024,
};

/**
 * The lower layers of the overlays mounted now (kernel mounts: their lowerdir in
 * /proc/self/mountinfo), real path → the mount's merged directory.
 */
export function mountedLowers(mountinfo?: string): Map<string, string> {
  const out = new Map<string, string>();
  let mounts: ReturnType<typeof listOverlayMounts>;
  try {
    mounts = listOverlayMounts(mountinfo);
  } catch {
    return out; // no /proc here: nothing is known mounted
  }
  for (const m of mounts) for (const l of m.lower) if (l.startsWith('/')) out.set(realOrSelf(l), m.merged ?? '');
  return out;
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Why the layer at `root` (a real path) cannot change while the overlay is open, or undefined
 * when it may. `mounted`: mountedLowers(), plus the lowers of a mount of this very stack that
 * the caller knows of (a fuse-overlayfs mount shows no lowerdir in mountinfo).
 */
export function immutableReason(root: string, mounted: ReadonlyMap<string, string>): string | undefined {
  const at = mounted.get(root);
  if (at !== undefined) return `a lower of the overlay mounted at ${at || 'a place not visible here'}`;
  // Docker's overlay2 driver: <data-root>/overlay2/<id>/diff, with the layer's short id in <id>/link.
  if (path.basename(root) === 'diff' && fs.existsSync(path.join(path.dirname(root), 'link'))) return 'a Docker overlay2 layer';
  const cache = realOrSelf(cacheRoot());
  if (root === cache || root.startsWith(cache + '/')) return 'a layer of the image layer cache';
  return undefined;
}

/** How lower layer `root` is watched under `setting`. */
export function lowerPlan(root: string, setting: WatchLowerLayers, mounted: ReadonlyMap<string, string>): LayerPlan {
  if (setting === 'never') return { mode: 'none', reason: 'overlay.watchLowerLayers is "never"' };
  if (setting === 'always') return { mode: 'whole', reason: 'overlay.watchLowerLayers is "always"' };
  const immutable = immutableReason(root, mounted);
  if (immutable) return { mode: 'none', reason: `${immutable}: it does not change` };
  return { mode: 'followed', reason: 'a lower layer: the directories VS Code watches or the user looks at' };
}
