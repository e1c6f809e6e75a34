/**
 * The `overlay` scheme: overlay://NAME/path is the merged view of overlay NAME, answered
 * by the overlay server. Writes copy up (server side); change events come from the
 * server's watcher (any writer: this window, the CLI, a container, a kernel mount), so
 * `watch` itself has nothing to do. Every error goes through toFileSystemError once.
 */
import * as vscode from 'vscode';
import { CreateDirectory, Delete, DidChangeFile, ReadDirectories, ReadFile, Rename, Stat, WriteFile, type FileStat } from '../../shared/src/protocol';
import { encodeBytes, readOverlayFile } from './transport';
import type { OverlayClient } from './client';
import { isConnectionError, toFileSystemError } from './errors';
import { ReadAhead } from './readAhead';
import type { Testing } from './testing';
import { OVERLAY_SCHEME, overlayPath, overlayUri } from './uris';

/** Show a progress notification for writes (copy-ups) that take longer than this. */
function progressDelayMs(): number {
  return vscode.workspace.getConfiguration('overlay').get<number>('progressDelayMs') ?? 1000;
}

export function toVscodeStat(st: FileStat): vscode.FileStat {
  return {
    type: st.type as vscode.FileType,
    ctime: st.ctime,
    mtime: st.mtime,
    size: st.size,
    permissions: st.permissions === 1 ? vscode.FilePermission.Readonly : undefined,
  };
}

export class OverlayFileSystemProvider implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;
  private readonly subscriptions: vscode.Disposable[] = [];

  /** Listings of the directories below the one asked for, fetched in the same round trip (readAhead.ts). */
  readonly readAhead: ReadAhead;

  constructor(
    private readonly server: OverlayClient,
    private readonly testing: Testing,
  ) {
    this.readAhead = new ReadAhead((params) => server.request(ReadDirectories, params));
    server.onNotification(DidChangeFile.type, (p) => {
      for (const name of new Set(p.changes.map((c) => c.name))) this.readAhead.changed(name);
      this.emitter.fire(p.changes.map((c) => ({ type: c.type as vscode.FileChangeType, uri: overlayUri(c.name, c.path) })));
    });
    // A restarted server may have missed changes: tell VS Code to look again at the roots.
    this.subscriptions.push(
      server.onWrite((name) => this.readAhead.changed(name)),
      server.onDidChangeState(() => this.readAhead.clear()), // a stop, a restart: changes may have been missed
      server.onDidStart(() => {
        const roots = [...server.overlays.keys()].map((n) => ({ type: vscode.FileChangeType.Changed, uri: overlayUri(n, '/') }));
        if (roots.length) this.emitter.fire(roots);
      }),
    );
  }

  /** Reads are idempotent: when the server died under a read, wait for the restart and ask again. */
  private async read<R>(uri: vscode.Uri, op: () => Promise<R>): Promise<R> {
    try {
      return await op();
    } catch (err) {
      if (!isConnectionError(err)) throw toFileSystemError(err, uri);
    }
    try {
      await this.server.whenRunning();
      return await op();
    } catch (err) {
      throw toFileSystemError(err, uri);
    }
  }

  /**
   * Writes are sent once. One cut off by a server crash fails (the editor shows the
   * error and stays dirty) — it is never retried blindly nor dropped silently.
   */
  private async write<R>(uri: vscode.Uri, title: string, op: () => Promise<R>): Promise<R> {
    if (this.server.state !== 'running') {
      await this.server.whenRunning().catch((err: unknown) => {
        throw vscode.FileSystemError.Unavailable(`${uri.toString(true)}: ${String((err as Error).message ?? err)}`);
      });
    }
    const pending = op();
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      this.testing.progressShown.push(title);
      void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title }, () => pending.catch(() => undefined));
    }, progressDelayMs());
    try {
      return await pending;
    } catch (err) {
      throw toFileSystemError(err, uri);
    } finally {
      done = true;
      clearTimeout(timer);
    }
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  /** Changes made behind the server's back by this extension (Revert touches the upper layer directly). */
  fireChanged(uris: vscode.Uri[], type = vscode.FileChangeType.Changed): void {
    for (const name of new Set(uris.map((u) => u.authority))) this.readAhead.changed(name);
    if (uris.length) this.emitter.fire(uris.map((uri) => ({ type, uri })));
  }

  stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    return this.read(uri, async () => toVscodeStat(await this.server.request(Stat, { name: uri.authority, path: overlayPath(uri) })));
  }

  readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    return this.read(uri, () => this.readAhead.readDirectory(uri.authority, overlayPath(uri)));
  }

  readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return this.read(uri, () => readOverlayFile((p) => this.server.request(ReadFile, p), uri.authority, overlayPath(uri)));
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array, options: { create: boolean; overwrite: boolean }): Promise<void> {
    const p = overlayPath(uri);
    await this.write(uri, `Overlay: writing ${p} (copy-up)…`, () =>
      this.server.request(WriteFile, { name: uri.authority, path: p, data: encodeBytes(content), create: options.create, overwrite: options.overwrite }),
    );
  }

  async delete(uri: vscode.Uri, options: { recursive: boolean }): Promise<void> {
    const p = overlayPath(uri);
    await this.write(uri, `Overlay: deleting ${p}…`, () => this.server.request(Delete, { name: uri.authority, path: p, recursive: options.recursive }));
  }

  async rename(oldUri: vscode.Uri, newUri: vscode.Uri, options: { overwrite: boolean }): Promise<void> {
    if (oldUri.authority !== newUri.authority) throw vscode.FileSystemError.NoPermissions('rename between two overlays');
    await this.write(oldUri, `Overlay: renaming ${overlayPath(oldUri)}…`, () =>
      this.server.request(Rename, { name: oldUri.authority, from: overlayPath(oldUri), to: overlayPath(newUri), overwrite: options.overwrite }),
    );
  }

  async createDirectory(uri: vscode.Uri): Promise<void> {
    await this.write(uri, `Overlay: creating ${overlayPath(uri)}…`, () =>
      this.server.request(CreateDirectory, { name: uri.authority, path: overlayPath(uri) }),
    );
  }

  dispose(): void {
    this.emitter.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}

export function registerOverlayFileSystem(server: OverlayClient, testing: Testing): { provider: OverlayFileSystemProvider; disposable: vscode.Disposable } {
  const provider = new OverlayFileSystemProvider(server, testing);
  return {
    provider,
    disposable: vscode.Disposable.from(provider, vscode.workspace.registerFileSystemProvider(OVERLAY_SCHEME, provider, { isCaseSensitive: true })),
  };
}
