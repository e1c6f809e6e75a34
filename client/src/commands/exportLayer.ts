/** "Overlay: Export Changes as Layer…": the upper layer as an OCI layer tarball, written by the server. */
import * as vscode from 'vscode';
import { ExportLayer } from '../../../shared/src/protocol';
import type { OverlayClient } from '../client';
import { OVERLAY_SCHEME } from '../uris';

async function pickOverlay(server: OverlayClient, arg?: unknown): Promise<string | undefined> {
  const fromUri = arg instanceof vscode.Uri && arg.scheme === OVERLAY_SCHEME ? arg.authority : undefined;
  if (fromUri) return fromUri;
  const writable = [...server.overlays.values()].filter((o) => !o.readOnly).map((o) => o.name);
  if (writable.length === 0) {
    void vscode.window.showInformationMessage('No open overlay has an upper layer to export.');
    return undefined;
  }
  if (writable.length === 1) return writable[0];
  return vscode.window.showQuickPick(writable, { title: 'Export the changes of which overlay?' });
}

/** `arg`: an overlay URI (which overlay); `to`: the tarball's file URI (skips the save dialog, for scripts and tests). */
export async function exportChangesAsLayer(server: OverlayClient, arg?: unknown, to?: vscode.Uri): Promise<string | undefined> {
  const name = await pickOverlay(server, arg);
  if (!name) return undefined;
  const folder = vscode.workspace.workspaceFile?.scheme === 'file' ? vscode.Uri.joinPath(vscode.workspace.workspaceFile, '..') : undefined;
  const target =
    to ??
    (await vscode.window.showSaveDialog({
      title: `Export the changes of overlay "${name}" as an OCI layer`,
      defaultUri: folder ? vscode.Uri.joinPath(folder, `${name}-changes.tar.gz`) : undefined,
      filters: { 'Layer tarball': ['tar.gz', 'tgz', 'tar'] },
      saveLabel: 'Export',
    }));
  if (!target) return undefined;
  if (target.scheme !== 'file') {
    void vscode.window.showErrorMessage('The layer tarball must be saved to a local file path on the machine the overlay server runs on.');
    return undefined;
  }
  try {
    const res = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Exporting ${name} as a layer…` }, () =>
      server.request(ExportLayer, { name, file: target.fsPath }),
    );
    void vscode.window.showInformationMessage(`Exported ${res.entries} entries to ${res.file} (diff_id ${res.diffId.slice(0, 19)}…).`);
    return res.file;
  } catch (err) {
    void vscode.window.showErrorMessage(`Export failed: ${String((err as Error).message ?? err)}`);
    return undefined;
  }
}
