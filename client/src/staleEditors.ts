/**
 * The consistency rule for editors. When a file is copied up (overlay/didCopyUp, by this
 * server or by an outside writer seen by its watcher), every tab that shows the stale
 * lower copy — `file:` of the lower real path, or the single-layer view of that layer —
 * is replaced in the same group and position by the current copy (overlay://NAME/path, or
 * the merged path of a kernel mount), keeping selection and scroll. A dirty buffer is
 * never discarded: it stays, and the user gets Compare / Apply my edits to the upper copy
 * / Keep. Tabs on overlay: URIs need nothing: their stat changed, so VS Code's own
 * reload / save-conflict flow applies.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DidCopyUp, type OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { lowerIndexOfReal } from './lowerCopy';
import type { Testing } from './testing';
import { LAYER_SCHEME, layerUri, overlayUri } from './uris';

interface ViewState {
  selections: readonly vscode.Selection[];
  visibleRanges: readonly vscode.Range[];
}

/** A dirty stale editor waiting for the user's decision. */
export interface PendingStale {
  readonly stale: vscode.Uri;
  readonly current: vscode.Uri;
  readonly overlay: string;
  readonly path: string;
}

export type StaleChoice = 'compare' | 'apply' | 'keep';

const COMPARE = 'Compare';
const APPLY = 'Apply my edits to the upper copy';
const KEEP = 'Keep';

/** Every event the redirector handled, for the status log and the e2e suite. */
export interface RedirectRecord {
  readonly stale: string;
  readonly current: string;
  readonly outcome: 'redirected' | 'dirty-kept' | 'applied' | 'failed';
  readonly ms: number;
}

export class StaleEditors implements vscode.Disposable {
  private readonly views = new Map<string, ViewState>();
  private readonly disposables: vscode.Disposable[] = [];
  readonly pending: PendingStale[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly server: OverlayClient,
    private readonly output: vscode.LogOutputChannel,
    private readonly testing: Testing,
  ) {
    server.onNotification(DidCopyUp.type, (e) => {
      this.queue = this.queue.then(() => this.onCopyUp(e)).catch((err: unknown) => this.output.appendLine(`[stale] ${String(err)}`));
    });
    // Remember where each editor was, for tabs that are not visible when the copy-up comes.
    this.disposables.push(
      vscode.window.onDidChangeTextEditorSelection((e) => this.remember(e.textEditor)),
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => this.remember(e.textEditor)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        for (const k of this.views.keys()) if (k.startsWith(`${d.uri.toString()}|`)) this.views.delete(k);
      }),
    );
  }

  private remember(editor: vscode.TextEditor): void {
    if (editor.viewColumn === undefined) return;
    const { scheme } = editor.document.uri;
    if (scheme !== 'file' && scheme !== LAYER_SCHEME) return;
    this.views.set(`${editor.document.uri.toString()}|${editor.viewColumn}`, { selections: editor.selections, visibleRanges: editor.visibleRanges });
  }

  /** The URIs that showed the lower copy, and the one that shows the file now. */
  private urisOf(info: OverlayInfo | undefined, e: DidCopyUp.Params): { stale: vscode.Uri[]; current: vscode.Uri } {
    const stale = [vscode.Uri.file(e.lowerPath)];
    const merged = info?.liveMount?.merged ?? info?.stack.merged;
    const current = merged ? vscode.Uri.file(path.join(merged, e.path)) : overlayUri(e.name, e.path);
    if (info) {
      const layer = lowerIndexOfReal(info, e.lowerPath);
      if (layer !== undefined) stale.push(layerUri(e.name, layer, e.path));
    }
    return { stale, current };
  }

  async onCopyUp(e: DidCopyUp.Params): Promise<void> {
    if (!vscode.workspace.getConfiguration('overlay').get<boolean>('redirectStaleEditors', true)) return;
    const { stale, current } = this.urisOf(this.server.overlays.get(e.name), e);
    const staleKeys = new Set(stale.map((u) => u.toString()));
    const tabs = vscode.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .filter((t) => t.input instanceof vscode.TabInputText && staleKeys.has(t.input.uri.toString()));
    if (tabs.length === 0) return;
    this.output.appendLine(`[stale] ${e.path} copied up (${e.by}); ${tabs.length} editor(s) showed ${e.lowerPath}`);
    const dirtyUris = new Map<string, vscode.Uri>();
    for (const tab of tabs) {
      const uri = (tab.input as vscode.TabInputText).uri;
      const started = Date.now();
      if (tab.isDirty) {
        dirtyUris.set(uri.toString(), uri);
        continue;
      }
      try {
        await this.replace(uri, tab.group.viewColumn, current);
        this.testing.staleEditors.push({ stale: uri.toString(), current: current.toString(), outcome: 'redirected', ms: Date.now() - started });
      } catch (err) {
        this.testing.staleEditors.push({ stale: uri.toString(), current: current.toString(), outcome: 'failed', ms: Date.now() - started });
        this.output.appendLine(`[stale] could not redirect ${uri.toString(true)}: ${String(err)}`);
      }
    }
    for (const uri of dirtyUris.values()) {
      const item: PendingStale = { stale: uri, current, overlay: e.name, path: e.path };
      this.pending.push(item);
      this.testing.staleEditors.push({ stale: uri.toString(), current: current.toString(), outcome: 'dirty-kept', ms: 0 });
      void this.ask(item);
    }
  }

  private async ask(item: PendingStale): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      `${item.path} was copied up to the overlay's upper layer. Your unsaved edits are on the stale lower copy (${item.stale.fsPath || item.stale.path}); saving there would write a lower layer.`,
      COMPARE,
      APPLY,
      KEEP,
    );
    if (!this.pending.includes(item)) return; // decided elsewhere (e.g. through the API)
    if (choice === COMPARE) await this.resolve(item, 'compare');
    else if (choice === APPLY) await this.resolve(item, 'apply');
    else if (choice === KEEP) await this.resolve(item, 'keep');
  }

  /** Acts on a pending dirty stale editor (the notification's buttons, or the e2e suite). */
  async resolve(item: PendingStale, choice: StaleChoice): Promise<void> {
    if (choice === 'compare') {
      await vscode.commands.executeCommand(
        'vscode.diff',
        item.current,
        item.stale,
        `${path.posix.basename(item.path)}: upper copy ↔ your edits on the lower copy`,
      );
      void this.ask(item);
      return;
    }
    this.pending.splice(this.pending.indexOf(item), 1);
    if (choice === 'keep') return;
    const staleDoc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === item.stale.toString());
    if (!staleDoc) return;
    const text = staleDoc.getText();
    const target = await vscode.workspace.openTextDocument(item.current);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(item.current, new vscode.Range(0, 0, target.lineCount, 0), text);
    if (!(await vscode.workspace.applyEdit(edit)) || !(await target.save())) {
      void vscode.window.showErrorMessage(
        `Could not apply your edits to ${item.current.toString(true)}; they are still in the editor of ${item.stale.fsPath}.`,
      );
      return;
    }
    // The edits are safe in the upper copy: drop them from the stale buffer, then redirect its tabs.
    for (const tab of vscode.window.tabGroups.all.flatMap((g) => g.tabs)) {
      if (!(tab.input instanceof vscode.TabInputText) || tab.input.uri.toString() !== item.stale.toString()) continue;
      const column = tab.group.viewColumn;
      if (staleDoc.isDirty) {
        await vscode.window.showTextDocument(staleDoc, { viewColumn: column, preserveFocus: false });
        await vscode.commands.executeCommand('workbench.action.files.revert');
      }
      await this.replace(item.stale, column, item.current);
    }
    this.testing.staleEditors.push({ stale: item.stale.toString(), current: item.current.toString(), outcome: 'applied', ms: 0 });
  }

  /** Replaces the tab of `stale` in `column` by `current`, same position, same selection and scroll. */
  private async replace(stale: vscode.Uri, column: vscode.ViewColumn, current: vscode.Uri): Promise<void> {
    const group = vscode.window.tabGroups.all.find((g) => g.viewColumn === column);
    const findTab = (uri: vscode.Uri) => group?.tabs.find((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri.toString());
    const tab = findTab(stale);
    if (!group || !tab) return;
    const index = group.tabs.indexOf(tab);
    const wasActive = tab.isActive;
    const previouslyActive = group.activeTab?.input instanceof vscode.TabInputText ? group.activeTab.input.uri : undefined;
    const focusedColumn = vscode.window.tabGroups.activeTabGroup.viewColumn;
    const editor = vscode.window.visibleTextEditors.find((e) => e.viewColumn === column && e.document.uri.toString() === stale.toString());
    const view: ViewState | undefined = editor
      ? { selections: editor.selections, visibleRanges: editor.visibleRanges }
      : this.views.get(`${stale.toString()}|${column}`);

    const opened = await vscode.window.showTextDocument(current, {
      viewColumn: column,
      preserveFocus: focusedColumn !== column,
      preview: tab.isPreview,
      selection: view?.selections[0],
    });
    if (view) {
      opened.selections = [...view.selections];
      if (view.visibleRanges[0]) opened.revealRange(view.visibleRanges[0], vscode.TextEditorRevealType.AtTop);
    }
    const old = findTab(stale);
    if (old) await vscode.window.tabGroups.close(old, true);
    const now = findTab(current);
    if (now && group.tabs.indexOf(now) !== index) {
      // moveActiveEditor works on the focused group's active editor
      await vscode.window.showTextDocument(opened.document, { viewColumn: column, preserveFocus: false });
      await vscode.commands.executeCommand('moveActiveEditor', { to: 'position', by: 'tab', value: index + 1 });
    }
    if (!wasActive && previouslyActive) {
      await vscode.window.showTextDocument(previouslyActive, { viewColumn: column, preserveFocus: true });
    }
    if (vscode.window.tabGroups.activeTabGroup.viewColumn !== focusedColumn) {
      const g = vscode.window.tabGroups.all.find((x) => x.viewColumn === focusedColumn);
      if (g?.activeTab?.input instanceof vscode.TabInputText) await vscode.window.showTextDocument(g.activeTab.input.uri, { viewColumn: focusedColumn });
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
