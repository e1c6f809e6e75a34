/**
 * What VS Code asks the overlay FileSystemProvider to watch (`watch(uri, options)`: the
 * workspace folder's root recursively, files and folders it cares about such as .vscode/*,
 * an extension's createFileSystemWatcher), forwarded to the server as overlay/watch and
 * overlay/unwatch; and the directories VS Code listed lately (the explorer's open folders,
 * a quick open walking them), the LISTED_MAX newest, as non-recursive watches of our own.
 * The server decides what that means in each layer (its watch policy, overlay.watchLowerLayers).
 * After a restart of the server, or when an overlay is opened (again), every watch still
 * held is sent again (overlay/watch of an id the server has is a replacement, not a second one).
 */
import * as vscode from 'vscode';
import { Configure, Unwatch, Watch } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { watchLowerLayersSetting } from './config';
import type { Testing } from './testing';
import { overlayPath } from './uris';

/** Directories listed lately that are followed, per window. */
const LISTED_MAX = 128;

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
  /** Listed directories followed, "name\0path" → watch id; the oldest first. */
  private readonly listedDirs = new Map<string, number>();

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

  /** VS Code listed directory `uri`: follow it while it is among the LISTED_MAX listed last. */
  listed(uri: vscode.Uri): void {
    const key = uri.authority + '\0' + overlayPath(uri);
    const had = this.listedDirs.get(key);
    if (had !== undefined) {
      this.listedDirs.delete(key);
      this.listedDirs.set(key, had);
      return;
    }
    const id = this.nextId++;
    const w: Held = { name: uri.authority, path: overlayPath(uri), recursive: false, excludes: [] };
    this.listedDirs.set(key, id);
    this.held.set(id, w);
    this.send(id, w);
    if (this.listedDirs.size > LISTED_MAX) {
      const [oldestKey, oldestId] = this.listedDirs.entries().next().value as [string, number];
      this.listedDirs.delete(oldestKey);
      const old = this.held.get(oldestId);
      this.held.delete(oldestId);
      if (old && this.server.state === 'running') void this.server.request(Unwatch, { name: old.name, id: oldestId }).catch(() => undefined);
    }
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
