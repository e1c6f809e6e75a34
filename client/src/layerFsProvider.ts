/**
 * `overlay-layer://NAME/L/path`: one layer of overlay NAME exactly as it is on disk,
 * read-only (FilePermission.Readonly; the scheme is registered isReadonly). L is 'upper'
 * or a lower index. Used for "Compare with Lower", Quick Diff, and browsing a layer.
 * Reads go straight to the layer directory: the layers live on this machine, and a lower
 * layer never changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LayerRef } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { LAYER_SCHEME, parseLayerUri } from './uris';
import { toFileSystemError } from './errors';

/** `?empty` on a layer URI: an empty file, the "lower copy" of a file that has none. */
export const EMPTY_QUERY = 'empty';

export class LayerFileSystemProvider implements vscode.FileSystemProvider {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  constructor(private readonly server: OverlayClient) {}

  /** Real directory of a layer of an open overlay. */
  layerDir(name: string, layer: LayerRef): string | undefined {
    const info = this.server.overlays.get(name);
    if (!info) return undefined;
    return layer === 'upper' ? info.stack.upper : info.stack.lower[layer];
  }

  private async realPath(uri: vscode.Uri): Promise<string> {
    const { name, layer, path: p } = parseLayerUri(uri);
    let dir = this.layerDir(name, layer);
    if (dir === undefined && this.server.state !== 'running') {
      await this.server.whenRunning().catch(() => undefined);
      dir = this.layerDir(name, layer);
    }
    if (dir === undefined) throw vscode.FileSystemError.FileNotFound(uri);
    return path.join(dir, p);
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    if (uri.query === EMPTY_QUERY) return { type: vscode.FileType.File, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    try {
      const st = await fs.promises.stat(await this.realPath(uri));
      const type = st.isDirectory() ? vscode.FileType.Directory : st.isFile() ? vscode.FileType.File : vscode.FileType.Unknown;
      return { type, ctime: st.ctimeMs, mtime: st.mtimeMs, size: st.size, permissions: vscode.FilePermission.Readonly };
    } catch (err) {
      throw toFileSystemError(err, uri);
    }
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    try {
      const entries = await fs.promises.readdir(await this.realPath(uri), { withFileTypes: true });
      return entries.map((e) => [
        e.name,
        e.isDirectory()
          ? vscode.FileType.Directory
          : e.isFile()
            ? vscode.FileType.File
            : e.isSymbolicLink()
              ? vscode.FileType.SymbolicLink
              : vscode.FileType.Unknown,
      ]);
    } catch (err) {
      throw toFileSystemError(err, uri);
    }
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    if (uri.query === EMPTY_QUERY) return new Uint8Array();
    try {
      return await fs.promises.readFile(await this.realPath(uri));
    } catch (err) {
      throw toFileSystemError(err, uri);
    }
  }

  writeFile(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
  delete(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
  rename(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
  createDirectory(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
}

export function registerLayerFileSystem(server: OverlayClient): { provider: LayerFileSystemProvider; disposable: vscode.Disposable } {
  const provider = new LayerFileSystemProvider(server);
  return { provider, disposable: vscode.workspace.registerFileSystemProvider(LAYER_SCHEME, provider, { isCaseSensitive: true, isReadonly: true }) };
}
