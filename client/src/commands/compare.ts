/** "Overlay: Compare with Lower": the lower copy (read-only layer view) against the overlay copy, overlay:// or mounted. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OverlayClient } from '../client';
import type { Locations } from '../locations';
import { lowerCopyUri } from '../lowerCopy';

export async function compareWithLower(server: OverlayClient, locations: Locations, arg?: unknown): Promise<void> {
  const uri =
    arg instanceof vscode.Uri ? arg : ((arg as vscode.SourceControlResourceState | undefined)?.resourceUri ?? vscode.window.activeTextEditor?.document.uri);
  const at = uri && locations.resolve(uri);
  if (!uri || !at) {
    void vscode.window.showInformationMessage('Compare with Lower works on files of an overlay folder (overlay:// or mounted).');
    return;
  }
  if (!server.overlays.has(at.name)) {
    void vscode.window.showErrorMessage(`The overlay ${at.name} is not open on the server.`);
    return;
  }
  const lower = await lowerCopyUri(server, at.name, at.path);
  const title = `${path.posix.basename(at.path)} (lower ↔ overlay)`;
  await vscode.commands.executeCommand('vscode.diff', lower, uri, title);
}
