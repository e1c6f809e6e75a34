/**
 * What VS Code asks the overlay FileSystemProvider to watch (`watch(uri, options)`: the
 * workspace folder's root recursively, open editors' files and folders, an extension's
 * createFileSystemWatcher), forwarded to the server as overlay/watch and overlay/unwatch.
 * The server decides what that means in each layer (its watch policy,
 * overlay.watchLowerLayers); it also follows the directories listed lately by itself.
 * After a restart of the server, or when an overlay is opened (again), every watch still
 * held is sent again (overlay/watch of an id the server has is a replacement, not a second one).
 */
import * as vscode from 'vscode';
import { Configure, Unwatch, Watch } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { watchLowerLayersSetting } from './config';
import type { Testing } from './testing';
import { overlayPath } from './uris';

interface Held {
  name: string;
  path: string;
  recursive: boolean;
  excludes: string[];
}

export class ServerWatches implements vscode.Disposable {
  private nextId = 1;
  private readonly held = new Map<number, Held>();
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly server: OverlayClient,
    private readonly testing: Testing,
  ) {
    this.subscriptions.push(
      server.onDidStart(() => this.resendNew(true)),
      server.onDidChangeOverlays(() => this.resendNew(false)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('overlay.watchLowerLayers') && server.state === 'running')
          void server
            .request(Configure, { watchLowerLayers: watchLowerLayersSetting() })
            .catch((err: unknown) => this.log(`overlay/configure: ${String(err)}`));
      }),
    );
  }

  /** A watch VS Code asked for; disposing it ends it. */
  watch(uri: vscode.Uri, options: { recursive: boolean; excludes: readonly string[] }): vscode.Disposable {
    const id = this.nextId++;
    const w: Held = { name: uri.authority, path: overlayPath(uri), recursive: options.recursive, excludes: [...options.excludes] };
    this.held.set(id, w);
    this.testing.watches.push({ op: 'watch', name: w.name, path: w.path, recursive: w.recursive });
    this.send(id, w);
    return new vscode.Disposable(() => {
      if (!this.held.delete(id)) return;
      this.testing.watches.push({ op: 'unwatch', name: w.name, path: w.path, recursive: w.recursive });
      if (this.server.state === 'running') void this.server.request(Unwatch, { name: w.name, id }).catch(() => undefined); // gone with its overlay: nothing to end
    });
  }

  private send(id: number, w: Held): void {
    if (this.server.state !== 'running') return; // sent at the start
    if (!this.server.overlays.has(w.name)) return; // sent when the overlay opens
    void this.server.request(Watch, { name: w.name, id, path: w.path, recursive: w.recursive, excludes: w.excludes }).catch((err: unknown) => {
      // A path that is not there (yet) is no error of the server's; anything else is logged.
      this.log(`overlay/watch ${w.name}:${w.path}: ${String((err as Error).message ?? err)}`);
    });
  }

  /** The overlays open when watches were last sent, as the client knew them (a new object: opened again). */
  private sentFor = new Map<string, unknown>();

  /** Send again the watches of the overlays opened (again) since, or all of them after a start. */
  private resendNew(all: boolean): void {
    if (this.server.state !== 'running') return;
    const now = new Map<string, unknown>(this.server.overlays);
    for (const [id, w] of this.held) if (all || (now.has(w.name) && this.sentFor.get(w.name) !== now.get(w.name))) this.send(id, w);
    this.sentFor = now;
  }

  private log(msg: string): void {
    this.server.output.appendLine(`[client] ${msg}`);
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}
