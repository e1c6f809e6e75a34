/**
 * The "lower copy" that Compare with Lower, Quick Diff and the changes view show: the
 * server answers which lower layer serves a path when the upper layer is left out.
 */
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { ResolveLower, type OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { EMPTY_QUERY } from './layerFsProvider';
import { layerUri } from './uris';

/** URI of a lower layer's copy of `p`, or of an empty read-only file when `layer` is undefined (an added file). */
export function lowerUriOf(name: string, layer: number | undefined, p: string): vscode.Uri {
  if (layer === undefined) return layerUri(name, 0, p).with({ query: EMPTY_QUERY });
  return layerUri(name, layer, p);
}

/** URI of the lower copy of overlay path `p`, as the server resolves it with the upper layer left out. */
export async function lowerCopyUri(server: OverlayClient, name: string, p: string): Promise<vscode.Uri> {
  const r = await server.request(ResolveLower, { name, path: p });
  return lowerUriOf(name, r && typeof r.layer === 'number' ? r.layer : undefined, r?.path ?? p);
}

/** Lower layer index whose directory holds `realPath`, if any. */
export function lowerIndexOfReal(info: OverlayInfo, realPath: string): number | undefined {
  for (let i = 0; i < info.stack.lower.length; i++) {
    const rel = path.relative(info.stack.lower[i], realPath);
    if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return i;
  }
  return undefined;
}
