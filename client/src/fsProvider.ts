/**
 * The `overlay` scheme: overlay://NAME/path is the merged view of overlay NAME, answered
 * by the overlay server. Writes copy up (server side); change events come from the
 * server's watcher (any writer: this window, the CLI, a container, a kernel mount); `watch`
 * tells the server where VS Code looks (watches.ts), which is where it watches the layers
 * that may change. Every error goes through toFileSystemError once.
 */
import * as vscode from 'vscode';
import { Copy, CreateDirectory, Delete, DidChangeFile, ReadDirectories, ReadFile, Rename, Stat, WriteFile, type FileStat } from '../../shared/src/protocol';
import { encodeBytes, readOverlayFile } from './transport';
import type { OverlayClient } from './client';
import { errorCode, isConnectionError, toFileSystemError, writeLocked } from './errors';
import { ReadAhead } from './readAhead';
import type { Testing } from './testing';
import { OVERLAY_SCHEME, overlayPath, overlayUri } from './uris';
import { ServerWatches } from './watches';

/** Show a progress notification for writes (copy-ups) that take longer than this. */
function progressDelayMs(): number {
  return vscode.workspace.getConfiguration('overlay').get<number>('progressDelayMs') ?? 1000;
}

/** Listings of at least this many entries, or taking this long, are logged with their time. */
const BIG_LISTING = 5000;
const SLOW_LISTING_MS = 500;

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
  private readonly watches: ServerWatches;
  /** Overlays whose root this window has listed (its first listing is logged once). */
  private readonly rootsListed = new Set<string>();
  /** Listings asked for and not answered yet, and when the last one ended (whenSettled). */
  private listing = 0;
  private lastListing = 0;

  constructor(
    private readonly server: OverlayClient,
    private readonly testing: Testing,
  ) {
    this.readAhead = new ReadAhead((params) => server.request(ReadDirectories, params));
    this.watches = new ServerWatches(server, testing);
    this.subscriptions.push(this.watches);
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

  watch(uri: vscode.Uri, options: { recursive: boolean; excludes: readonly string[] }): vscode.Disposable {
    return this.watches.watch(uri, options);
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
    const first = overlayPath(uri) === '/' && !this.rootsListed.has(uri.authority);
    const t0 = Date.now();
    this.listing++;
    return this.read(uri, async () => {
      const entries = await this.readAhead.readDirectory(uri.authority, overlayPath(uri));
      this.watches.listed(uri); // the user looks at it: the server watches it in the layers that may change
      // The opening's timeline, and listings big or slow enough to be felt (test/bench/vscode.ts reads them from the log file).
      const ms = Date.now() - t0;
      if (first && !this.rootsListed.has(uri.authority)) {
        this.rootsListed.add(uri.authority);
        this.server.output.info(`[client] first listing of ${uri.toString(true)}: ${entries.length} entries in ${ms} ms (at ${new Date().toISOString()})`);
      } else if (entries.length >= BIG_LISTING || ms >= SLOW_LISTING_MS) {
        this.server.output.info(`[client] listing of ${uri.toString(true)}: ${entries.length} entries in ${ms} ms (at ${new Date().toISOString()})`);
      }
      return entries;
    }).finally(() => {
      this.listing--;
      this.lastListing = Date.now();
    });
  }

  /**
   * Resolves once VS Code has listed the root of each overlay in `names` and then asked for no
   * listing for `quietMs` — or after `maxMs` whatever happened. Work that can wait (the changes
   * view's first diff) waits for it, so that it does not stand between the explorer and its
   * first listings.
   */
  async whenSettled(names: string[], quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    const settled = (): boolean => names.every((n) => this.rootsListed.has(n)) && this.listing === 0 && Date.now() - this.lastListing >= quietMs;
    while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return this.read(uri, () => readOverlayFile((p) => this.server.request(ReadFile, p), uri.authority, overlayPath(uri)));
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array, options: { create: boolean; overwrite: boolean }): Promise<void> {
    const p = overlayPath(uri);
    await this.write(uri, `Overlay: writing ${p} (copy-up)…`, async () => {
      try {
        return await this.server.request(WriteFile, {
          name: uri.authority,
          path: p,
          data: encodeBytes(content),
          create: options.create,
          overwrite: options.overwrite,
        });
      } catch (err) {
        throw await this.lockedOr(err, uri);
      }
    });
  }

  /**
   * A write refused for permissions (EACCES, EPERM) to a file whose owner may not write it
   * is "write locked", as the disk provider answers (diskFileSystemProvider.ts
   * toFileSystemProviderWriteError): VS Code then says the file is read-only.
   */
  private async lockedOr(err: unknown, uri: vscode.Uri): Promise<unknown> {
    const code = errorCode(err);
    if (code !== 'EACCES' && code !== 'EPERM') return err;
    const st = await this.server.request(Stat, { name: uri.authority, path: overlayPath(uri) }).catch(() => undefined);
    return st?.mode !== undefined && (st.mode & 0o200) === 0 ? writeLocked(uri, (err as Error).message) : err;
  }

  async delete(uri: vscode.Uri, options: { recursive: boolean }): Promise<void> {
    const p = overlayPath(uri);
    try {
      await this.write(uri, `Overlay: deleting ${p}…`, () => this.server.request(Delete, { name: uri.authority, path: p, recursive: options.recursive }));
    } catch (err) {
      // As the disk provider's recursive delete (rimraf): what is not there is deleted.
      if (options.recursive && err instanceof vscode.FileSystemError && err.code === 'FileNotFound') return;
      throw err;
    }
  }

  async rename(oldUri: vscode.Uri, newUri: vscode.Uri, options: { overwrite: boolean }): Promise<void> {
    if (oldUri.authority !== newUri.authority) {
      // Between two overlays: a copy, then the source goes (what VS Code does between two providers).
      await this.copyBetween(oldUri, newUri, options.overwrite);
      await this.delete(oldUri, { recursive: true });
      return;
    }
    if (overlayPath(oldUri) === overlayPath(newUri)) return;
    await this.validateMoveCopy(oldUri, newUri, options.overwrite);
    await this.write(oldUri, `Overlay: renaming ${overlayPath(oldUri)}…`, () =>
      this.server.request(Rename, { name: oldUri.authority, from: overlayPath(oldUri), to: overlayPath(newUri), overwrite: options.overwrite }),
    );
  }

  /**
   * Copies on the server, as the disk provider copies (cp -a: modes and times kept, symlinks
   * stay symlinks), instead of VS Code reading and writing every file through the extension.
   */
  async copy(source: vscode.Uri, destination: vscode.Uri, options: { overwrite: boolean }): Promise<void> {
    if (source.authority !== destination.authority) return this.copyBetween(source, destination, options.overwrite);
    if (overlayPath(source) === overlayPath(destination)) return;
    await this.validateMoveCopy(source, destination, options.overwrite);
    await this.write(source, `Overlay: copying ${overlayPath(source)}…`, () =>
      this.server.request(Copy, { name: source.authority, from: overlayPath(source), to: overlayPath(destination), overwrite: options.overwrite }),
    );
  }

  /**
   * What the disk provider checks before a rename or a copy (diskFileSystemProvider.ts
   * validateMoveCopy): the source must stat (a dangling symlink does, a loop does not); an
   * existing target is refused without overwrite, else removed first unless both are files.
   */
  private async validateMoveCopy(from: vscode.Uri, to: vscode.Uri, overwrite: boolean): Promise<void> {
    const source = await this.stat(from).catch(() => undefined);
    if (!source) throw vscode.FileSystemError.FileNotFound(`${from.toString(true)}: the file to move or copy does not exist`);
    const target = await this.stat(to).catch(() => undefined);
    if (!target) return;
    if (!overwrite) throw vscode.FileSystemError.FileExists(`${to.toString(true)}: the target exists, and overwrite is not set`);
    if ((source.type & vscode.FileType.File) === 0 || (target.type & vscode.FileType.File) === 0) await this.delete(to, { recursive: true });
  }

  /** A copy from one overlay into another: through the extension, symlinks followed, as VS Code copies between two providers. */
  private async copyBetween(source: vscode.Uri, destination: vscode.Uri, overwrite: boolean): Promise<void> {
    if (await this.stat(destination).catch(() => undefined)) {
      if (!overwrite) throw vscode.FileSystemError.FileExists(destination);
      await this.delete(destination, { recursive: true });
    }
    const st = await this.stat(source);
    if (st.type & vscode.FileType.Directory) {
      await this.createDirectory(destination);
      for (const [name] of await this.readDirectory(source)) {
        await this.copyBetween(vscode.Uri.joinPath(source, name), vscode.Uri.joinPath(destination, name), false);
      }
    } else {
      await this.writeFile(destination, await this.readFile(source), { create: true, overwrite: false });
    }
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
