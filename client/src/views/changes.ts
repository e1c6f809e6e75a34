/**
 * The "Overlay" source-control view: one SourceControl per overlay folder with the groups
 * Added, Modified and Deleted (whiteouts) from overlay/diff; a click opens the lower copy
 * against the current one; Revert drops the upper copy or the whiteout (after a modal
 * confirmation); Quick Diff compares editors with the lower copy; file decorations mark
 * copied-up (M) and added (A) files.
 */
import type { Testing } from '../testing';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Delete, Diff, DidChangeFile, Revert, type OverlayInfo } from '../../../shared/src/protocol';
import type { OverlayClient } from '../client';
import { lowerCopyUri, lowerUriOf } from '../lowerCopy';
import { OVERLAY_SCHEME, layerUri, overlayPath, overlayUri } from '../uris';

export type { ChangeKind } from '../../../shared/src/protocol';
import type { ChangeKind } from '../../../shared/src/protocol';

export interface OverlayChange {
  kind: ChangeKind;
  name: string;
  path: string;
  /** The lower layer whose copy this change replaces or hides. */
  lowerLayer?: number;
  /** For a D: the opaque directory (replaced as a whole) that hides this lower entry. */
  hiddenBy?: string;
}

const GROUPS: Record<ChangeKind, { id: string; label: string }> = {
  A: { id: 'added', label: 'Added' },
  C: { id: 'modified', label: 'Modified' },
  D: { id: 'deleted', label: 'Deleted' },
};

class OverlayRepository implements vscode.Disposable {
  readonly scm: vscode.SourceControl;
  readonly groups: Record<ChangeKind, vscode.SourceControlResourceGroup>;
  changes: OverlayChange[] = [];

  constructor(
    readonly name: string,
    provider: () => vscode.QuickDiffProvider,
  ) {
    this.scm = vscode.scm.createSourceControl('overlay', `Overlay: ${name}`, overlayUri(name, '/'));
    this.scm.quickDiffProvider = provider();
    this.scm.inputBox.visible = false;
    this.groups = {
      A: this.scm.createResourceGroup(GROUPS.A.id, GROUPS.A.label),
      C: this.scm.createResourceGroup(GROUPS.C.id, GROUPS.C.label),
      D: this.scm.createResourceGroup(GROUPS.D.id, GROUPS.D.label),
    };
    for (const g of Object.values(this.groups)) g.hideWhenEmpty = false;
  }

  dispose(): void {
    this.scm.dispose();
  }
}

export class ChangesView implements vscode.Disposable, vscode.FileDecorationProvider, vscode.QuickDiffProvider {
  private readonly repos = new Map<string, OverlayRepository>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly decorationsEmitter = new vscode.EventEmitter<vscode.Uri[] | undefined>();
  readonly onDidChangeFileDecorations = this.decorationsEmitter.event;
  private readonly kinds = new Map<string, ChangeKind>();
  /** The opaque directory hiding each hidden lower entry, by `name:path`. */
  private readonly hidden = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: OverlayClient,
    private readonly fireChanged: (uris: vscode.Uri[], type: vscode.FileChangeType) => void,
    private readonly testing: Testing,
  ) {
    server.onNotification(DidChangeFile.type, () => this.scheduleRefresh());
    this.disposables.push(
      server.onDidStart(() => this.scheduleRefresh(0)),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.scheduleRefresh(0)),
      vscode.window.registerFileDecorationProvider(this),
    );
  }

  private overlayNames(): string[] {
    return [...new Set((vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === OVERLAY_SCHEME).map((f) => f.uri.authority))];
  }

  scheduleRefresh(delayMs = 150): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), delayMs);
  }

  /** Re-reads overlay/diff of every overlay folder and updates the groups and decorations. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.doRefresh()).catch(() => undefined);
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const names = this.overlayNames();
    for (const [name, repo] of this.repos) {
      if (!names.includes(name)) {
        repo.dispose();
        this.repos.delete(name);
      }
    }
    const changedUris: vscode.Uri[] = [];
    for (const name of names) {
      const info = this.server.overlays.get(name);
      if (!info || this.server.state !== 'running') continue;
      let repo = this.repos.get(name);
      if (!repo) {
        repo = new OverlayRepository(name, () => this);
        this.repos.set(name, repo);
      }
      let raw: Diff.Change[];
      try {
        raw = await this.server.request(Diff, { name });
      } catch {
        continue;
      }
      // Directories are listed for what changed in them (docker diff marks every ancestor C): files only, and deletions.
      const changes: OverlayChange[] = raw
        .filter((c) => c.kind === 'D' || c.type !== 'd')
        .map((c) => ({ kind: c.kind, name, path: c.path, lowerLayer: c.lowerLayer, hiddenBy: c.hiddenBy }));
      for (const key of [...this.kinds.keys()]) {
        if (key.startsWith(`${name}:`)) {
          changedUris.push(overlayUri(name, key.slice(name.length + 1)));
          this.kinds.delete(key);
          this.hidden.delete(key);
        }
      }
      for (const c of changes) {
        this.kinds.set(`${name}:${c.path}`, c.kind);
        if (c.hiddenBy !== undefined) this.hidden.set(`${name}:${c.path}`, c.hiddenBy);
        changedUris.push(overlayUri(name, c.path));
      }
      repo.changes = changes;
      for (const kind of ['A', 'C', 'D'] as const) {
        repo.groups[kind].resourceStates = changes
          .filter((c) => c.kind === kind)
          .sort((a, b) => a.path.localeCompare(b.path))
          .map((c) => this.resourceState(c));
      }
      repo.scm.count = changes.length;
    }
    this.decorationsEmitter.fire(changedUris);
  }

  private resourceState(c: OverlayChange): vscode.SourceControlResourceState {
    const uri = overlayUri(c.name, c.path);
    const base = path.posix.basename(c.path);
    if (c.kind === 'D') {
      const layer = c.lowerLayer;
      return {
        resourceUri: uri,
        decorations: {
          strikeThrough: true,
          tooltip:
            c.hiddenBy === undefined
              ? 'Deleted (whiteout in the upper layer)'
              : `Hidden: ${c.hiddenBy} was replaced as a whole in the upper layer (an opaque directory), which hides this lower entry`,
        },
        contextValue: 'deleted',
        command: layer === undefined ? undefined : { title: 'Open Lower Copy', command: 'vscode.open', arguments: [layerUri(c.name, layer, c.path)] },
      };
    }
    return {
      resourceUri: uri,
      decorations: { tooltip: c.kind === 'A' ? 'Added in the upper layer' : 'Copied up and changed' },
      contextValue: c.kind === 'A' ? 'added' : 'modified',
      command: { title: 'Compare with Lower', command: 'vscode.diff', arguments: [lowerUriOf(c.name, c.lowerLayer, c.path), uri, `${base} (lower ↔ overlay)`] },
    };
  }

  /** Current changes (for the e2e suite and the status item). */
  changes(name: string): OverlayChange[] {
    return this.repos.get(name)?.changes ?? [];
  }

  group(name: string, kind: ChangeKind): vscode.SourceControlResourceGroup | undefined {
    return this.repos.get(name)?.groups[kind];
  }

  provideOriginalResource(uri: vscode.Uri): Promise<vscode.Uri | undefined> | undefined {
    if (uri.scheme !== OVERLAY_SCHEME || !this.server.overlays.has(uri.authority)) return undefined;
    return lowerCopyUri(this.server, uri.authority, overlayPath(uri));
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    if (uri.scheme !== OVERLAY_SCHEME || !vscode.workspace.getConfiguration('overlay').get<boolean>('decorations', true)) return undefined;
    const kind = this.kinds.get(`${uri.authority}:${overlayPath(uri)}`);
    if (kind === 'C') return { badge: 'M', tooltip: 'Copied up to the upper layer', color: new vscode.ThemeColor('gitDecoration.modifiedResourceForeground') };
    if (kind === 'A') return { badge: 'A', tooltip: 'Added in the upper layer', color: new vscode.ThemeColor('gitDecoration.addedResourceForeground') };
    return undefined;
  }

  /**
   * Revert: drop the upper copy (Modified), delete the added file (Added), or remove the
   * whiteout (Deleted) — the lower copy shows again. Only the upper layer is touched. A lower
   * entry hidden by an opaque directory has no whiteout to remove: the user is told so, and
   * chooses between a copy of the lower version in the upper directory and reverting the
   * whole directory.
   */
  async revert(...args: unknown[]): Promise<number> {
    const targets = collectUris(args);
    if (targets.length === 0) {
      const active = vscode.window.activeTextEditor?.document.uri;
      if (active?.scheme === OVERLAY_SCHEME) targets.push(active);
    }
    let items = targets
      .map((uri) => ({ uri, kind: this.kinds.get(`${uri.authority}:${overlayPath(uri)}`) }))
      .filter((t): t is { uri: vscode.Uri; kind: ChangeKind } => t.kind !== undefined);
    if (items.length === 0) {
      void vscode.window.showInformationMessage('Nothing to revert: the file is the same as in the lower layers.');
      return 0;
    }
    // Entries an opaque directory hides: asked about on their own (what Revert can and cannot do there).
    const hidden = items.filter((i) => this.hidden.has(`${i.uri.authority}:${overlayPath(i.uri)}`));
    const answered = new Set(hidden);
    if (hidden.length > 0) {
      const answer = await this.askHidden(hidden.map((i) => i.uri));
      if (!answer) return 0;
      if (answer.revertDirs) {
        // The directories themselves are reverted instead (their other changes go too).
        const dirs = answer.revertDirs.filter((d) => !items.some((i) => i.uri.toString() === d.toString())).map((uri) => ({ uri, kind: 'C' as const }));
        dirs.forEach((d) => answered.add(d));
        items = [...items.filter((i) => !hidden.includes(i)), ...dirs];
      }
    }
    if (!this.testing.autoConfirm && items.some((i) => !answered.has(i))) {
      const what = items.length === 1 ? path.posix.basename(items[0].uri.path) : `${items.length} files`;
      const verb = items.every((i) => i.kind === 'A') ? 'delete' : 'revert';
      const ok = await vscode.window.showWarningMessage(
        `Do you want to ${verb} ${what}? ${verb === 'delete' ? 'The added file is removed from the upper layer.' : 'The upper copy or whiteout is removed and the lower copy shows again.'} This cannot be undone.`,
        { modal: true },
        verb === 'delete' ? 'Delete' : 'Revert',
      );
      if (!ok) return 0;
    }
    let done = 0;
    for (const { uri, kind } of items) {
      const info = this.server.overlays.get(uri.authority);
      if (!info) continue;
      try {
        await this.revertOne(info, uri, kind);
        if (kind !== 'A') this.fireChanged([uri], kind === 'D' ? vscode.FileChangeType.Created : vscode.FileChangeType.Changed);
        done++;
      } catch (err) {
        void vscode.window.showErrorMessage(`Revert of ${uri.path} failed: ${String((err as Error).message ?? err)}`);
      }
    }
    await this.refresh();
    return done;
  }

  /**
   * What Revert can and cannot do for lower entries an opaque directory hides. Resolves to
   * `{}` to put back copies of them (Revert on each: server side), to `{ revertDirs }` to
   * revert their directories instead, or undefined when cancelled.
   */
  private async askHidden(uris: vscode.Uri[]): Promise<{ revertDirs?: vscode.Uri[] } | undefined> {
    const dirs = [...new Set(uris.map((u) => this.hidden.get(`${u.authority}:${overlayPath(u)}`) as string))];
    const dirUris = dirs.map((d) => overlayUri(uris[0].authority, d));
    if (this.testing.autoConfirm) return {};
    const what = uris.length === 1 ? path.posix.basename(uris[0].path) : `${uris.length} entries`;
    const dirText = dirs.length === 1 ? dirs[0] : `${dirs.length} directories`;
    const copy = uris.length === 1 ? 'Restore a Copy' : 'Restore Copies';
    const revertDir = dirs.length === 1 ? `Revert ${dirs[0]}` : 'Revert the Directories';
    const picked = await vscode.window.showWarningMessage(
      `${what} was not deleted on its own: ${dirText} was replaced as a whole (an opaque directory in the upper layer), which hides everything the lower layers have there. ` +
        `Revert cannot show it again while the directory stays opaque. It can put a copy of the lower version into the upper directory (${copy}), ` +
        `or revert ${dirText} itself, which drops the upper copy and every change made inside it (${revertDir}).`,
      { modal: true },
      copy,
      revertDir,
    );
    if (picked === copy) return {};
    if (picked === revertDir) return { revertDirs: dirUris };
    return undefined;
  }

  private async revertOne(info: OverlayInfo, uri: vscode.Uri, kind: ChangeKind): Promise<void> {
    const p = overlayPath(uri);
    if (kind === 'A') {
      await this.server.request(Delete, { name: info.name, path: p, recursive: true });
      return;
    }
    await this.server.request(Revert, { name: info.name, path: p });
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const r of this.repos.values()) r.dispose();
    for (const d of this.disposables) d.dispose();
    this.decorationsEmitter.dispose();
  }
}

/** URIs from command arguments: resource states (SCM), URIs (explorer), arrays of either. */
function collectUris(args: unknown[]): vscode.Uri[] {
  const out: vscode.Uri[] = [];
  const add = (a: unknown): void => {
    if (a instanceof vscode.Uri) out.push(a);
    else if (Array.isArray(a)) a.forEach(add);
    else if (a && typeof a === 'object' && (a as vscode.SourceControlResourceState).resourceUri instanceof vscode.Uri)
      out.push((a as vscode.SourceControlResourceState).resourceUri);
  };
  args.forEach(add);
  const seen = new Set<string>();
  return out.filter((u) => u.scheme === OVERLAY_SCHEME && !seen.has(u.toString()) && seen.add(u.toString()));
}
