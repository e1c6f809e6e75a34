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
import { updateSetting } from '../config';
import { lowerCopyUri, lowerUriOf } from '../lowerCopy';
import type { Locations } from '../locations';
import { OVERLAY_SCHEME, layerUri, overlayUri } from '../uris';

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

/** A diff that takes this long is logged with its time (the server answers nothing else meanwhile). */
const SLOW_DIFF_MS = 500;

const GROUPS: Record<ChangeKind, { id: string; label: string }> = {
  A: { id: 'added', label: 'Added' },
  C: { id: 'modified', label: 'Modified' },
  D: { id: 'deleted', label: 'Deleted' },
};

class OverlayRepository implements vscode.Disposable {
  readonly scm: vscode.SourceControl;
  get root(): vscode.Uri {
    return this.scm.rootUri as vscode.Uri;
  }
  readonly groups: Record<ChangeKind, vscode.SourceControlResourceGroup>;
  changes: OverlayChange[] = [];

  constructor(
    readonly name: string,
    root: vscode.Uri,
    provider: () => vscode.QuickDiffProvider,
  ) {
    this.scm = vscode.scm.createSourceControl('overlay', `Overlay: ${name}`, root);
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
    private readonly locations: Locations,
    private readonly fireChanged: (uris: vscode.Uri[], type: vscode.FileChangeType) => void,
    private readonly testing: Testing,
    /** Resolves when the first diff after a start may run (the explorer has what it asked for first). */
    private readonly settled: () => Promise<void> = () => Promise.resolve(),
  ) {
    server.onNotification(DidChangeFile.type, () => this.scheduleRefresh());
    this.disposables.push(
      server.onDidStart(() => void this.settled().then(() => this.scheduleRefresh(0))),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.scheduleRefresh(0)),
      vscode.window.registerFileDecorationProvider(this),
    );
  }

  /** Overlays open as a workspace folder, overlay:// or mounted. */
  private overlayNames(): string[] {
    return this.locations.folderNames();
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
      const root = this.locations.workingUri(name, '/');
      if (repo && repo.root.toString() !== root.toString()) {
        repo.dispose();
        repo = undefined;
      }
      if (!repo) {
        repo = new OverlayRepository(name, root, () => this);
        this.repos.set(name, repo);
      }
      let raw: Diff.Change[];
      const t0 = Date.now();
      try {
        raw = await this.server.request(Diff, { name });
      } catch {
        continue;
      }
      const ms = Date.now() - t0;
      if (ms >= SLOW_DIFF_MS) this.server.output.info(`[changes] overlay/diff of ${name}: ${raw.length} entries in ${ms} ms (at ${new Date().toISOString()})`);
      // Directories are listed for what changed in them (docker diff marks every ancestor C): files only, and deletions.
      const changes: OverlayChange[] = raw
        .filter((c) => c.kind === 'D' || c.type !== 'd')
        .map((c) => ({ kind: c.kind, name, path: c.path, lowerLayer: c.lowerLayer, hiddenBy: c.hiddenBy }));
      for (const key of [...this.kinds.keys()]) {
        if (key.startsWith(`${name}:`)) {
          changedUris.push(...this.urisOf(name, key.slice(name.length + 1)));
          this.kinds.delete(key);
          this.hidden.delete(key);
        }
      }
      for (const c of changes) {
        this.kinds.set(`${name}:${c.path}`, c.kind);
        if (c.hiddenBy !== undefined) this.hidden.set(`${name}:${c.path}`, c.hiddenBy);
        changedUris.push(...this.urisOf(name, c.path));
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

  /** The URIs that show overlay path `p`: overlay://, and the mounted file when there is one. */
  private urisOf(name: string, p: string): vscode.Uri[] {
    const working = this.locations.workingUri(name, p);
    return working.scheme === OVERLAY_SCHEME ? [working] : [overlayUri(name, p), working];
  }

  private resourceState(c: OverlayChange): vscode.SourceControlResourceState {
    const uri = this.locations.workingUri(c.name, c.path);
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

  /** Quick diff: the lower copy of an overlay file, overlay:// or mounted. */
  provideOriginalResource(uri: vscode.Uri): Promise<vscode.Uri | undefined> | undefined {
    const at = this.locations.resolve(uri);
    if (!at?.info || at.path === '/') return undefined;
    return lowerCopyUri(this.server, at.name, at.path);
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    if (!vscode.workspace.getConfiguration('overlay').get<boolean>('decorations', true)) return undefined;
    const at = this.locations.resolve(uri);
    if (!at) return undefined;
    const kind = this.kinds.get(`${at.name}:${at.path}`);
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
      if (active) targets.push(active);
    }
    type Item = { uri: vscode.Uri; at: { name: string; path: string }; kind: ChangeKind };
    let items = targets
      .map((uri) => ({ uri, at: this.locations.resolve(uri) }))
      .map(({ uri, at }) => ({ uri, at, kind: at && this.kinds.get(`${at.name}:${at.path}`) }))
      .filter((t): t is Item => t.kind !== undefined && t.at !== undefined);
    if (items.length === 0) {
      void vscode.window.showInformationMessage('Nothing to revert: the file is the same as in the lower layers.');
      return 0;
    }
    // Entries an opaque directory hides: asked about on their own (what Revert can and cannot do there).
    const hidden = items.filter((i) => this.hidden.has(`${i.at.name}:${i.at.path}`));
    const answered = new Set<Item>(hidden);
    if (hidden.length > 0) {
      const answer = await this.askHidden(hidden.map((i) => i.at));
      if (!answer) return 0;
      if (answer.revertDirs) {
        // The directories themselves are reverted instead (their other changes go too).
        const dirs: Item[] = answer.revertDirs
          .filter((d) => !items.some((i) => i.at.name === d.name && i.at.path === d.path))
          .map((at) => ({ uri: this.locations.workingUri(at.name, at.path), at, kind: 'C' as const }));
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
    const remounted: vscode.Uri[] = [];
    for (const { uri, at, kind } of items) {
      const info = this.server.overlays.get(at.name);
      if (!info) continue;
      try {
        if (!(await this.revertOne(info, at.path, kind))) continue;
        if (kind !== 'A' && info.mount) remounted.push(uri);
        if (kind !== 'A') this.fireChanged([overlayUri(at.name, at.path)], kind === 'D' ? vscode.FileChangeType.Created : vscode.FileChangeType.Changed);
        done++;
      } catch (err) {
        const message = `Revert of ${uri.scheme === 'file' ? uri.fsPath : uri.path} failed: ${String((err as Error).message ?? err)}`;
        this.testing.revertFailures.push(message);
        void vscode.window.showErrorMessage(message);
      }
    }
    if (remounted.length) await afterRemount(remounted, this.server.output);
    await this.refresh();
    return done;
  }

  /**
   * What Revert can and cannot do for lower entries an opaque directory hides. Resolves to
   * `{}` to put back copies of them (Revert on each: server side), to `{ revertDirs }` to
   * revert their directories instead, or undefined when cancelled.
   */
  private async askHidden(entries: { name: string; path: string }[]): Promise<{ revertDirs?: { name: string; path: string }[] } | undefined> {
    const dirs = [...new Set(entries.map((e) => this.hidden.get(`${e.name}:${e.path}`) as string))];
    const dirEntries = dirs.map((d) => ({ name: entries[0].name, path: d }));
    if (this.testing.autoConfirm) return {};
    const what = entries.length === 1 ? path.posix.basename(entries[0].path) : `${entries.length} entries`;
    const dirText = dirs.length === 1 ? dirs[0] : `${dirs.length} directories`;
    const copy = entries.length === 1 ? 'Restore a Copy' : 'Restore Copies';
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
    if (picked === revertDir) return { revertDirs: dirEntries };
    return undefined;
  }

  /**
   * One revert. Under the server's own mount the server unmounts for the moment. Under a mount
   * it does not own (a running container's) the upper cannot be changed: the user is told what
   * Revert can do there — write the lower copy back through the mount — and it does that.
   */
  private async revertOne(info: OverlayInfo, p: string, kind: ChangeKind): Promise<boolean> {
    if (kind === 'A') {
      await this.server.request(Delete, { name: info.name, path: p, recursive: true });
      return true;
    }
    const foreign = info.liveMount?.reachable && info.mount?.path !== info.liveMount.merged;
    if (!foreign) {
      await this.server.request(Revert, { name: info.name, path: p });
      return true;
    }
    const WRITE = 'Write the Lower Copy';
    const ok =
      this.testing.autoConfirm ||
      (await vscode.window.showWarningMessage(
        `${path.posix.basename(p)}: the overlay is mounted at ${info.liveMount?.merged} by someone else (a running container), which owns its upper layer, so Revert cannot remove the ${kind === 'D' ? 'whiteout' : 'upper copy'} while it is mounted. It can write the lower copy back through the mount: the file then reads as in the lower layers, and stays listed as ${kind === 'D' ? 'Modified' : 'Modified'} (its copy lives in the upper layer). To drop the change itself, stop the container and revert then.`,
        { modal: true },
        WRITE,
      )) === WRITE;
    if (!ok) return false;
    await this.server.request(Revert, { name: info.name, path: p, throughMount: true });
    return true;
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const r of this.repos.values()) r.dispose();
    for (const d of this.disposables) d.dispose();
    this.decorationsEmitter.dispose();
  }
}

/**
 * After a revert took a mount down and put it up again (the server's remount): VS Code's file
 * watcher of the folder still watches the old mount, and saw none of it. Its watchers are made
 * anew — a change of `files.watcherExclude` does that: a key that matches nothing is added, or
 * removed if the last remount added it (in the workspace file; a window without one keeps its
 * watcher until it reloads) — and clean editors of the reverted files are read again.
 */
async function afterRemount(uris: vscode.Uri[], output: vscode.LogOutputChannel): Promise<void> {
  if (vscode.workspace.workspaceFile) {
    const config = vscode.workspace.getConfiguration('files');
    const KEY = '**/.overlayws-remounted';
    const next = { ...(config.inspect<Record<string, boolean>>('watcherExclude')?.workspaceValue ?? {}) };
    if (KEY in next) delete next[KEY];
    else next[KEY] = true;
    await updateSetting(config, 'watcherExclude', Object.keys(next).length ? next : undefined, vscode.ConfigurationTarget.Workspace).catch((err: unknown) =>
      output.warn(`[revert] could not renew the file watchers: ${String(err)}`),
    );
  } else output.warn('[revert] the folder was mounted again; without a workspace file, VS Code may miss changes in it until the window reloads');
  const keys = new Set(uris.map((u) => u.toString()));
  const previous = vscode.window.activeTextEditor;
  let moved = false;
  for (const tab of vscode.window.tabGroups.all.flatMap((g) => g.tabs)) {
    if (!(tab.input instanceof vscode.TabInputText) || !keys.has(tab.input.uri.toString()) || tab.isDirty) continue;
    await vscode.window.showTextDocument(tab.input.uri, { viewColumn: tab.group.viewColumn, preserveFocus: false, preview: tab.isPreview });
    await vscode.commands.executeCommand('workbench.action.files.revert');
    moved = true;
  }
  if (moved && previous) await vscode.window.showTextDocument(previous.document, { viewColumn: previous.viewColumn });
  await vscode.commands.executeCommand('workbench.files.action.refreshFilesExplorer');
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
  return out.filter((u) => (u.scheme === OVERLAY_SCHEME || u.scheme === 'file') && !seen.has(u.toString()) && seen.add(u.toString()));
}
