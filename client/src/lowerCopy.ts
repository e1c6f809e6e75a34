/**
 * Which lower layer serves a path when the upper layer is ignored: the "lower copy" that
 * Compare with Lower, Quick Diff and the changes view show. Read on disk from the
 * stack the server validated (real absolute paths, decided whiteout format).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import type { OverlayInfo } from '../../server/src/protocol';
import { EMPTY_QUERY } from './layerFsProvider';
import { layerUri } from './uris';

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function isWhiteout(info: OverlayInfo, layerDir: string, p: string): boolean {
  const real = path.join(layerDir, p);
  if (info.stack.whiteouts === 'oci') return lstat(path.join(path.dirname(real), `.wh.${path.basename(real)}`)) !== undefined;
  const st = lstat(real);
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
}

/** Index of the lower layer whose copy of `p` shows without the upper, or undefined (added file). */
export function lowerLayerOf(info: OverlayInfo, p: string): number | undefined {
  const parts = p.split('/').filter(Boolean);
  for (let i = 0; i < info.stack.lower.length; i++) {
    const dir = info.stack.lower[i];
    // a whiteout of the path or of one of its parents in this layer hides everything below
    for (let k = 1; k <= parts.length; k++) {
      const prefix = `/${parts.slice(0, k).join('/')}`;
      if (isWhiteout(info, dir, prefix)) return undefined;
    }
    const st = lstat(path.join(dir, p));
    if (st && !(st.isCharacterDevice() && st.rdev === 0)) return i;
  }
  return undefined;
}

/** URI of the lower copy of overlay path `p` (an empty read-only file when there is none). */
export function lowerCopyUri(info: OverlayInfo, p: string): vscode.Uri {
  const layer = lowerLayerOf(info, p);
  if (layer === undefined) return layerUri(info.name, 0, p).with({ query: EMPTY_QUERY });
  return layerUri(info.name, layer, p);
}

/** Lower layer index whose directory holds `realPath`, if any. */
export function lowerIndexOfReal(info: OverlayInfo, realPath: string): number | undefined {
  for (let i = 0; i < info.stack.lower.length; i++) {
    const rel = path.relative(info.stack.lower[i], realPath);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return i;
  }
  return undefined;
}
