/**
 * A path's history across the layers: what each layer of the stack, read on its own, has at
 * that path, top to bottom — its content (a file with its size and sha256, a directory, a
 * symlink with its target), a whiteout, or an opaque directory that hides it. A whiteout or an
 * opaque directory ABOVE the path (at an ancestor) counts only when some layer below it has
 * content at the path: that is what it hides. Nothing merges here; each layer is its raw tree,
 * read in the stack's whiteout format.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createError } from './errors';
import type { LayerDir } from './formats';
import type { Layer, LayerView } from './lookup';
import { lstatOrUndefined } from './lstat';
import { encodePath, readlinkName } from './names';
import { splitRequestPath } from './paths';
import type { LayerRef } from './types';

export type HistoryKind = 'file' | 'dir' | 'symlink' | 'whiteout' | 'opaque';

/** One layer's part of a path's history (the CLI prints it as one JSON line). */
export interface HistoryEntry {
  layer: LayerRef;
  kind: HistoryKind;
  /** Regular files (and other non-directories): bytes. */
  size?: number;
  /** Regular files: sha256 of the content, hex. */
  sha256?: string;
  /** Symlinks: the target as stored. */
  target?: string;
}

/** What one layer has at `comps`: content, a marker at the path or above it, or nothing. */
function inLayer(view: LayerView, layer: Layer, comps: string[]): { entry: Omit<HistoryEntry, 'layer'>; above: boolean; real?: string } | undefined {
  const format = view.format;
  let dir: LayerDir = { real: layer.root, st: fs.lstatSync(encodePath(layer.root)) };
  let opaqueAbove = false;
  for (let i = 0; i < comps.length; i++) {
    const real = dir.real + '/' + comps[i];
    const st = lstatOrUndefined(real);
    const last = i === comps.length - 1;
    if (format.whitesOut(dir, comps[i], st, real)) return { entry: { kind: 'whiteout' }, above: !last };
    if (st === undefined) return opaqueAbove ? { entry: { kind: 'opaque' }, above: true } : undefined;
    const here: LayerDir = { real, st };
    const opaque = st.isDirectory() && format.stopsMerge(dir, here, comps[i]);
    if (last) {
      if (st.isDirectory()) return { entry: { kind: opaque ? 'opaque' : 'dir' }, above: false };
      if (st.isSymbolicLink()) return { entry: { kind: 'symlink', target: readlinkName(real) }, above: false };
      return { entry: { kind: 'file', size: st.size }, above: false, real: st.isFile() ? real : undefined };
    }
    if (!st.isDirectory()) return undefined; // a non-directory on the way: nothing at the path in this layer
    opaqueAbove ||= opaque;
    dir = here;
  }
  // The root itself: every layer has it.
  return { entry: { kind: 'dir' }, above: false };
}

async function sha256Of(real: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(encodePath(real), { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The history of request path `p` in the stack `view` shows, upper layer first. ENOENT when no layer has anything there. */
export async function fileHistory(view: LayerView, p: string): Promise<HistoryEntry[]> {
  const comps = splitRequestPath(p, 'history');
  const found: { layer: LayerRef; entry: Omit<HistoryEntry, 'layer'>; above: boolean; real?: string }[] = [];
  for (const layer of view.layers) {
    const r = inLayer(view, layer, comps);
    if (r) found.push({ layer: layer.ref, ...r });
  }
  // A marker above the path hides something only when a layer below it holds the path.
  const out: HistoryEntry[] = [];
  for (let i = 0; i < found.length; i++) {
    const f = found[i];
    if (f.above && !found.slice(i + 1).some((g) => !g.above && g.entry.kind !== 'whiteout')) continue;
    const entry: HistoryEntry = { layer: f.layer, ...f.entry };
    if (f.real !== undefined) entry.sha256 = await sha256Of(f.real);
    out.push(entry);
  }
  if (out.length === 0) throw createError('ENOENT', 'history', p, 'no layer has anything at this path');
  return out;
}
