/** Every overlay.* command. */
import * as vscode from 'vscode';
import type { OverlayClient } from '../client';
import type { Locations } from '../locations';
import type { LowerGuard } from '../lowerGuard';
import type { MountedFolders } from '../mountedFolders';
import { findFileCommand, searchTextCommand } from '../search';
import { showStatus } from '../status';
import type { ChangesView } from '../views/changes';
import { compareWithLower } from './compare';
import { exportChangesAsLayer } from './exportLayer';
import { commitChangesAsImage, openImage, type CommitImageArgs, type OpenImageArgs } from './image';
import { layersOfFile, type LayersOfFileAction } from './layersOfFile';
import { openDocker, openFolders, openLayer, openMount, type OpenFoldersArgs } from './open';

export function registerCommands(
  context: vscode.ExtensionContext,
  server: OverlayClient,
  changes: ChangesView,
  guard: LowerGuard,
  mounted: MountedFolders,
  locations: Locations,
): void {
  const reg = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  // Each open command takes an optional argument for scripted use (no pickers) and returns the overlay's name.
  reg('overlay.openFolders', (args?: OpenFoldersArgs) => openFolders(server, mounted, args));
  reg('overlay.openMount', (merged?: string) => openMount(server, mounted, merged));
  reg('overlay.openDocker', (target?: string) => openDocker(server, mounted, target));
  reg('overlay.openLayer', (name?: string, layer?: 'upper' | number) => openLayer(server, name, layer));
  reg('overlay.compareWithLower', (arg?: unknown) => compareWithLower(server, locations, arg));
  reg('overlay.revert', (...args: unknown[]) => changes.revert(...args));
  reg('overlay.refreshChanges', () => changes.refresh());
  reg('overlay.layersOfFile', (arg?: unknown, action?: LayersOfFileAction) => layersOfFile(server, locations, arg, action));
  reg('overlay.openImage', (args?: OpenImageArgs) => openImage(server, mounted, args));
  reg('overlay.commitImage', (arg?: unknown, scripted?: CommitImageArgs) => commitChangesAsImage(server, locations, arg, scripted));
  reg('overlay.exportChanges', (arg?: unknown, to?: vscode.Uri) => exportChangesAsLayer(server, arg, to));
  reg('overlay.findFile', (query?: string) => findFileCommand(server, locations, query));
  reg('overlay.searchText', (query?: string) => searchTextCommand(server, locations, query));
  reg('overlay.restartServer', () => server.restart());
  reg('overlay.showLog', () => server.output.show());
  reg('overlay.showStatus', () => showStatus(server, locations));
  reg('overlay.editInOverlay', (uri?: vscode.Uri) => guard.editInOverlay(uri));
  reg('overlay.saveToUpperCopy', (uri?: vscode.Uri) => guard.editInOverlay(uri));
}
