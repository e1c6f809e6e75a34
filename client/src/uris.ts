/**
 * The URI schemes of the extension:
 *   overlay://NAME/path           the merged view of overlay NAME (read-write unless no upper)
 *   overlay-layer://NAME/L/path   one layer of NAME as it is on disk, read-only; L is
 *                                 'upper' or the lower index (0 = top-most lower)
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LayerRef } from '../../shared/src/protocol';

export const OVERLAY_SCHEME = 'overlay';
export const LAYER_SCHEME = 'overlay-layer';

/** Overlay path ('/a/b') of a URI; '/' for the root. */
export function overlayPath(uri: vscode.Uri): string {
  const p = path.posix.normalize(uri.path || '/');
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

export function overlayUri(name: string, p: string): vscode.Uri {
  return vscode.Uri.from({ scheme: OVERLAY_SCHEME, authority: name, path: p.startsWith('/') ? p : `/${p}` });
}

export function layerUri(name: string, layer: LayerRef, p: string): vscode.Uri {
  return vscode.Uri.from({ scheme: LAYER_SCHEME, authority: name, path: `/${layer}${p.startsWith('/') ? p : `/${p}`}` });
}

export function parseLayerUri(uri: vscode.Uri): { name: string; layer: LayerRef; path: string } {
  const m = /^\/(upper|\d+)(\/.*)?$/.exec(uri.path);
  if (!m) throw vscode.FileSystemError.FileNotFound(uri);
  return { name: uri.authority, layer: m[1] === 'upper' ? 'upper' : Number(m[1]), path: path.posix.normalize(m[2] ?? '/') };
}

/** `child` (a real path) relative to `root`, as an overlay path, or undefined when outside. */
export function under(root: string, child: string): string | undefined {
  const rel = path.relative(root, child);
  if (rel === '') return '/';
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return `/${rel.split(path.sep).join('/')}`;
}
