/**
 * Where the user works on an overlay: its `overlay://NAME/` folder, or, when it is open
 * mounted, the `file:` folder of the mount (the server's own mount, or a container's merged
 * directory opened in place). One home for the two questions every view asks: which URI shows
 * overlay path P of overlay N (workingUri), and which overlay and path a URI shows (resolve).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { OVERLAY_SCHEME, overlayPath, overlayUri, under } from './uris';

/** The `file:` directory that shows overlay `info` merged, when there is one: the server's mount, or a live mount's merged dir. */
export function mountDirOf(info: OverlayInfo): string | undefined {
  return info.mount?.path ?? (info.liveMount?.reachable ? info.liveMount.merged : undefined) ?? info.stack.merged;
}

function folderOpen(uri: vscode.Uri): boolean {
  return (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.toString() === uri.toString());
}

/** The mounted directory of `info` that is open as a workspace folder, if any. */
export function mountedFolderOf(info: OverlayInfo): string | undefined {
  const dir = mountDirOf(info);
  return dir && folderOpen(vscode.Uri.file(dir)) ? dir : undefined;
}

export class Locations {
  constructor(private readonly server: OverlayClient) {}

  /**
   * The URI the user works in for overlay path `p`: overlay://NAME/p when that folder is open,
   * else the mounted path when the overlay is open mounted (or has a mount the server holds),
   * else overlay://NAME/p.
   */
  workingUri(name: string, p: string): vscode.Uri {
    const ov = overlayUri(name, p);
    if (folderOpen(overlayUri(name, '/'))) return ov;
    const info = this.server.overlays.get(name);
    const dir = info && (mountedFolderOf(info) ?? info.mount?.path ?? (info.liveMount?.reachable ? info.liveMount.merged : undefined));
    return dir ? vscode.Uri.file(path.join(dir, p)) : ov;
  }

  /** The overlay and overlay path a URI shows: overlay://NAME/p, or a file under an open overlay's mounted directory. */
  resolve(uri: vscode.Uri): { name: string; path: string; info?: OverlayInfo } | undefined {
    if (uri.scheme === OVERLAY_SCHEME) return { name: uri.authority, path: overlayPath(uri), info: this.server.overlays.get(uri.authority) };
    if (uri.scheme !== 'file') return undefined;
    for (const info of this.server.overlays.values()) {
      const dir = mountDirOf(info);
      if (!dir) continue;
      const p = under(dir, uri.fsPath);
      if (p !== undefined) return { name: info.name, path: p, info };
    }
    return undefined;
  }

  /** Overlays shown as a workspace folder, overlay:// or mounted. */
  folderNames(): string[] {
    const names = new Set<string>();
    for (const f of vscode.workspace.workspaceFolders ?? []) {
      if (f.uri.scheme === OVERLAY_SCHEME) names.add(f.uri.authority);
      else if (f.uri.scheme === 'file') {
        for (const info of this.server.overlays.values()) if (mountDirOf(info) === f.uri.fsPath) names.add(info.name);
      }
    }
    return [...names];
  }
}
