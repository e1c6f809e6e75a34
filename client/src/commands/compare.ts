/** "Overlay: Compare with Lower": the lower copy (read-only layer view) against the overlay copy. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OverlayClient } from '../client';
import { lowerCopyUri } from '../lowerCopy';
import { OVERLAY_SCHEME, overlayPath } from '../uris';

export async function compareWithLower(server: OverlayClient, arg?: unknown): Promise<void> {
  const uri =
    arg instanceof vscode.Uri ? arg : ((arg as vscode.SourceControlResourceState | undefined)?.resourceUri ?? vscode.window.activeTextEditor?.document.uri);
  if (!uri || uri.scheme !== OVERLAY_SCHEME) {
    void vscode.window.showInformationMessage('Compare with Lower works on files of an overlay folder.');
    return;
  }
  if (!server.overlays.has(uri.authority)) {
    void vscode.window.showErrorMessage(`The overlay ${uri.authority} is not open on the server.`);
    return;
  }
  const lower = await lowerCopyUri(server, uri.authority, overlayPath(uri));
  const title = `${path.posix.basename(uri.path)} (lower ↔ overlay)`;
  await vscode.commands.executeCommand('vscode.diff', lower, uri, title);
}
