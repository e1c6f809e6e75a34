/** Entry point: wires the server client, file systems, views and commands. Nothing else lives here. */
import * as vscode from 'vscode';
import type { OverlayApi } from './api';
import { OverlayClient } from './client';
import { registerCommands } from './commands';
import { registerOverlayFileSystem } from './fsProvider';
import { registerLayerFileSystem } from './layerFsProvider';
import { Locations } from './locations';
import { LowerGuard } from './lowerGuard';
import { MountedFolders } from './mountedFolders';
import { trackMountedFolders } from './mounts';
import { registerSearchProviders } from './search';
import { StaleEditors } from './staleEditors';
import { StaleReaders } from './staleReaders';
import { OverlayStatus } from './status';
import { Testing } from './testing';
import { OVERLAY_SCHEME } from './uris';
import { ChangesView } from './views/changes';

let server: OverlayClient | undefined;

export function activate(context: vscode.ExtensionContext): OverlayApi {
  const activatedAt = Date.now();
  server = new OverlayClient(context);
  const s = server;
  const testing = new Testing();
  const locations = new Locations(s);
  const layers = registerLayerFileSystem(s);
  const overlayFs = registerOverlayFileSystem(s, testing);
  const stale = new StaleEditors(s, locations, s.output, testing);
  const readers = new StaleReaders(s, s.output, testing);
  // The changes view's first overlay/diff waits until the explorer has the overlay folders' roots and stopped
  // listing for a moment: on a big upper the diff holds the server for seconds (up to 5 s later at most).
  const overlayFolders = (): string[] => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === OVERLAY_SCHEME).map((f) => f.uri.authority);
  const changes = new ChangesView(
    s,
    locations,
    (uris, type) => overlayFs.provider.fireChanged(uris, type),
    testing,
    () => overlayFs.provider.whenSettled(overlayFolders(), 1000, 5000),
  );
  const mounted = new MountedFolders(s, testing);
  const status = new OverlayStatus(s, mounted);
  const guard = new LowerGuard(s, locations, context, testing);
  context.subscriptions.push(s, overlayFs.disposable, layers.disposable, stale, readers, changes, mounted, status, guard, trackMountedFolders(s));
  registerCommands(context, s, changes, guard, mounted, locations);
  s.output.info(registerSearchProviders(s, context.subscriptions, testing));

  const updateContext = () =>
    void vscode.commands.executeCommand(
      'setContext',
      'overlay.active',
      (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.scheme === OVERLAY_SCHEME) || locations.folderNames().length > 0,
    );
  updateContext();
  context.subscriptions.push(
    vscode.workspace.onDidChangeWorkspaceFolders(updateContext),
    s.onDidChangeOverlays(updateContext),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('overlay.overlays') && s.state === 'running') {
        void s.syncOverlays().then(() => changes.scheduleRefresh(0));
      }
    }),
  );
  s.start().catch((err: unknown) => {
    s.output.appendLine(`[client] the overlay server did not start: ${String(err)}`);
    void vscode.window
      .showErrorMessage(`The overlay server did not start: ${String((err as Error).message ?? err)}`, 'Show Log')
      .then((c) => c && s.output.show());
  });
  s.output.info(`[client] activated in ${Date.now() - activatedAt} ms (at ${new Date(activatedAt).toISOString()})`);

  return {
    server: {
      get state() {
        return s.state;
      },
      get pid() {
        return s.pid;
      },
      get restartCount() {
        return s.restartCount;
      },
      whenRunning: (t) => s.whenRunning(t),
      onDidStart: s.onDidStart,
    },
    staleEditors: stale,
    staleReaders: readers,
    lowerGuard: guard,
    changes,
    testing,
    readAhead: overlayFs.provider.readAhead,
    mountedFolders: mounted,
    overlays: () => [...s.overlays.values()],
  };
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
