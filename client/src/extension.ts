/** Entry point: wires the server client, file systems, views and commands. Nothing else lives here. */
import * as vscode from 'vscode';
import type { OverlayApi } from './api';
import { OverlayClient } from './client';
import { registerCommands } from './commands';
import { registerOverlayFileSystem } from './fsProvider';
import { registerLayerFileSystem } from './layerFsProvider';
import { LowerGuard } from './lowerGuard';
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
  server = new OverlayClient(context);
  const s = server;
  const testing = new Testing();
  const layers = registerLayerFileSystem(s);
  const overlayFs = registerOverlayFileSystem(s, testing);
  const stale = new StaleEditors(s, s.output, testing);
  const readers = new StaleReaders(s, s.output, testing);
  const changes = new ChangesView(s, (uris, type) => overlayFs.provider.fireChanged(uris, type), testing);
  const status = new OverlayStatus(s);
  const guard = new LowerGuard(s, context, testing);
  context.subscriptions.push(s, overlayFs.disposable, layers.disposable, stale, readers, changes, status, guard, trackMountedFolders(s));
  registerCommands(context, s, changes, guard);
  s.output.info(registerSearchProviders(s, context.subscriptions, testing));

  const updateContext = () =>
    void vscode.commands.executeCommand(
      'setContext',
      'overlay.active',
      (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.scheme === OVERLAY_SCHEME),
    );
  updateContext();
  context.subscriptions.push(
    vscode.workspace.onDidChangeWorkspaceFolders(updateContext),
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
    overlays: () => [...s.overlays.values()],
  };
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
