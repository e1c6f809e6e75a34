/**
 * Kernel overlay mounts, as the server's engine parses /proc/self/mountinfo (overlay/mounts),
 * and the mounted overlays that are open as plain folders. For those the server gets the stack
 * too (not saved in the settings): its watcher then reports copy-ups the kernel makes, and
 * editors on a lower real path move to the merged path (staleEditors.ts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Mounts, type StackSpec } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { configuredOverlays } from './config';

/** Overlay mounts of the server's /proc/self/mountinfo: mount point and stack (kernel whiteouts). */
export async function overlayMounts(server: OverlayClient): Promise<{ merged: string; spec: StackSpec }[]> {
  const r = await server.request(Mounts, undefined);
  // The server's own mounts are open as workspace folders already (mountedFolders.ts).
  return r.overlays.filter((m) => path.dirname(m.merged) !== r.runtimeDir).map((m) => ({ merged: m.merged, spec: { ...m.spec, whiteouts: 'kernel' } }));
}

/** Mounted overlays that contain a file: workspace folder, as ephemeral overlays on the server. */
export function trackMountedFolders(server: OverlayClient): vscode.Disposable {
  const update = async () => {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const wanted = new Map<string, StackSpec>();
    if (folders.length) {
      const configured = Object.values(configuredOverlays());
      for (const m of await overlayMounts(server)) {
        if (!m.spec.upper) continue;
        // A configured overlay of the same stack (a container opened at its merged directory) serves it already.
        if (configured.some((c) => c.upper !== undefined && path.resolve(c.upper) === m.spec.upper)) continue;
        if (folders.some((f) => f === m.merged || f.startsWith(`${m.merged}${path.sep}`))) {
          wanted.set(`mounted-${path.basename(m.merged).replace(/[^A-Za-z0-9.-]+/g, '-') || 'root'}`, m.spec);
        }
      }
    }
    await server.setEphemeral(wanted);
  };
  const run = () => void (server.state === 'running' ? update() : Promise.resolve()).catch((err: unknown) => server.output.warn(`[mounts] ${String(err)}`));
  const subs = [vscode.workspace.onDidChangeWorkspaceFolders(run), server.onDidStart(run)];
  run();
  return vscode.Disposable.from(...subs);
}
