/**
 * No save from the editor lands in a lower layer. Every lower layer of every overlay the
 * server has open or the settings name — and the upper of a live kernel mount, which is
 * written through the merged directory — is a protected root:
 *
 * - `files.readonlyInclude` gets `ROOT/**` for each root (in the .code-workspace file when
 *   there is one, where only the entries this module wrote are replaced; else in user
 *   settings, where entries are only added, since other windows share them).
 *   VS Code then shows `file:` editors on those files read-only and ignores every save of
 *   them: explicit, Save All, autosave, format-on-save, other extensions' edits.
 * - "Edit in Overlay" (editor title, and the notice shown when such a file opens) opens the
 *   overlay copy instead; when the lower buffer is dirty its text is written there first,
 *   through the overlay — a copy-up with the user's content — and the lower buffer reverted.
 * - A dirty buffer on a protected file (made before the protection, or after the user
 *   lifted read-only) gets "Save to Upper Copy". Should a save of it start anyway, a save
 *   participant writes the text to the upper copy and hands VS Code the file's own text
 *   to write; afterwards bytes and times of the layer file are put back if they differ.
 *   Deletes and renames of protected files through VS Code (WorkspaceEdit; the explorer
 *   already refuses read-only items) are undone, with a message that says why.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { configuredOverlays } from './config';
import type { Testing } from './testing';
import { overlayUri, under } from './uris';

export const CONTEXT_KEY = 'overlay.inLowerLayer';
const READONLY_KEY = 'readonlyInclude';
const OWNED_KEY = 'overlay.lowerGuard.globs';

const EDIT = 'Edit in Overlay';
const SAVE_UPPER = 'Save to Upper Copy';
const COMPARE = 'Compare';
const KEEP = 'Keep';

/** A directory no editor may write: a lower layer, or the upper of a live mount. */
export interface ProtectedRoot {
  readonly dir: string;
  readonly kind: 'lower' | 'upper';
  readonly overlay: string;
  /** Where the merged view is written: a live mount's merged dir, else overlay://NAME. */
  readonly merged?: string;
}

/** What a protected real path maps to. */
export interface GuardedFile {
  readonly root: ProtectedRoot;
  /** Overlay path of the file ('/a/b'). */
  readonly path: string;
  /** The copy to edit instead: overlay://NAME/path or MERGED/path. */
  readonly target: vscode.Uri;
}

/** Every event the guard handled, for the status log and the e2e suite. */
export interface GuardRecord {
  readonly uri: string;
  readonly outcome: 'opened-overlay' | 'saved-to-upper' | 'restored-after-save' | 'restored-after-delete' | 'restored-after-rename' | 'dirty-offered';
}

function rootsOf(info: Pick<OverlayInfo, 'name' | 'stack'> & { liveMount?: OverlayInfo['liveMount'] }): ProtectedRoot[] {
  const merged = info.liveMount?.merged ?? info.stack.merged;
  const out: ProtectedRoot[] = info.stack.lower.map((dir) => ({ dir, kind: 'lower' as const, overlay: info.name, merged }));
  if (merged && info.stack.upper) out.push({ dir: info.stack.upper, kind: 'upper', overlay: info.name, merged });
  return out;
}

/** Escapes glob syntax in a path ({} [] * ? are literal in directory names). */
function globOf(dir: string): string {
  return `${dir.replace(/[{}[\]*?]/g, '[$&]')}/**`;
}

export class LowerGuard implements vscode.Disposable {
  private roots: ProtectedRoot[] = [];
  private signature = '';
  private readonly disposables: vscode.Disposable[] = [];
  private readonly offered = new Set<string>();
  private readonly noticed = new Set<string>();
  private readonly snapshots = new Map<string, { data: Buffer; atimeMs: number; mtimeMs: number }>();
  private readonly savedToUpper = new Map<string, string>();
  private readonly failedCopies = new Map<string, string>();
  private readonly backups = new Map<string, string>();
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly server: OverlayClient,
    private readonly context: vscode.ExtensionContext,
    private readonly testing: Testing,
  ) {
    this.disposables.push(
      server.onDidChangeOverlays(() => this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('overlay.overlays') && this.refresh()),
      vscode.window.onDidChangeActiveTextEditor((e) => this.onActiveEditor(e)),
      vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length > 0 && this.offerDirty(e.document)),
      vscode.workspace.onWillSaveTextDocument((e) => this.onWillSave(e)),
      vscode.workspace.onDidSaveTextDocument((d) => void this.afterSave(d)),
      vscode.workspace.onWillDeleteFiles((e) => e.files.forEach((u) => this.backup(u))),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((u) => this.restoreDeleted(u))),
      vscode.workspace.onDidRenameFiles((e) => e.files.forEach((f) => this.undoRename(f.oldUri, f.newUri))),
    );
    this.refresh();
  }

  /** The protected roots now. */
  protectedRoots(): readonly ProtectedRoot[] {
    return this.roots;
  }

  /** The root and overlay copy of a `file:` URI, or undefined when it is not protected. */
  lookup(uri: vscode.Uri): GuardedFile | undefined {
    if (uri.scheme !== 'file') return undefined;
    for (const root of this.roots) {
      const p = under(root.dir, uri.fsPath);
      if (p === undefined || p === '/') continue;
      const target = root.merged ? vscode.Uri.file(path.join(root.merged, p)) : overlayUri(root.overlay, p);
      return { root, path: p, target };
    }
    return undefined;
  }

  /** Resolves once the readonly settings for the current roots are written. */
  async whenSettled(): Promise<void> {
    this.refresh();
    await this.writing;
  }

  private refresh(): void {
    const roots: ProtectedRoot[] = [];
    const seen = new Set<string>();
    for (const info of this.server.overlays.values()) roots.push(...rootsOf(info));
    for (const [name, spec] of Object.entries(configuredOverlays())) {
      if (!this.server.overlays.has(name)) roots.push(...rootsOf({ name, stack: spec }));
    }
    this.roots = roots.filter((r) => !seen.has(r.dir) && seen.add(r.dir));
    const signature = this.roots
      .map((r) => `${r.kind}:${r.dir}:${r.overlay}:${r.merged ?? ''}`)
      .sort()
      .join('\n');
    if (signature === this.signature) return;
    this.signature = signature;
    this.writing = this.writing
      .then(() => this.writeSettings())
      .catch((err: unknown) => this.server.output.warn(`[guard] could not write files.readonlyInclude: ${String(err)}`));
    this.onActiveEditor(vscode.window.activeTextEditor);
    for (const doc of vscode.workspace.textDocuments) this.offerDirty(doc);
  }

  /**
   * Whether a buffer holds text its file does not: dirty, or changed while read-only (a
   * WorkspaceEdit still lands in a read-only buffer in 1.139, which then does not count as
   * dirty and is never saved — the text would be lost on close).
   */
  private unsaved(doc: vscode.TextDocument): boolean {
    if (doc.isDirty) return true;
    try {
      if (fs.statSync(doc.uri.fsPath).size > 8 * 1024 * 1024) return false;
      return fs.readFileSync(doc.uri.fsPath, 'utf8').replace(/^\uFEFF/, '') !== doc.getText();
    } catch {
      return false;
    }
  }

  private async writeSettings(): Promise<void> {
    const config = vscode.workspace.getConfiguration('files');
    const inWorkspace = vscode.workspace.workspaceFile !== undefined;
    const target = inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    const inspected = config.inspect<Record<string, boolean>>(READONLY_KEY);
    const current = (inWorkspace ? inspected?.workspaceValue : inspected?.globalValue) ?? {};
    // In user settings other windows' entries live too: there, only add (a stale entry keeps a
    // former layer read-only, which is safe; removing one could unprotect another window's layer).
    const owned = new Set(inWorkspace ? this.context.workspaceState.get<string[]>(OWNED_KEY, []) : []);
    const wanted = this.roots.map((r) => globOf(r.dir));
    const next: Record<string, boolean> = {};
    for (const [glob, on] of Object.entries(current)) if (!owned.has(glob)) next[glob] = on;
    const added = wanted.filter((g) => next[g] === undefined);
    for (const g of added) next[g] = true;
    if (inWorkspace) await this.context.workspaceState.update(OWNED_KEY, added);
    if (JSON.stringify(next) === JSON.stringify(current)) return;
    await config.update(READONLY_KEY, next, target);
    this.server.output.info(`[guard] read-only in the editor: ${wanted.join(', ') || '(nothing)'}`);
  }

  private onActiveEditor(editor: vscode.TextEditor | undefined): void {
    const hit = editor ? this.lookup(editor.document.uri) : undefined;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, hit !== undefined);
    if (!editor || !hit) return;
    const key = editor.document.uri.toString();
    if (this.noticed.has(key) || editor.document.isDirty) return;
    this.noticed.add(key);
    const what = hit.root.kind === 'lower' ? `a lower layer of overlay '${hit.root.overlay}'` : `the upper layer of the live mount ${hit.root.merged}`;
    void vscode.window
      .showInformationMessage(
        `${path.basename(hit.path)} is in ${what}: read-only here, because a write there would bypass the overlay. Edit the overlay copy instead; its first save copies up.`,
        EDIT,
      )
      .then((c) => (c === EDIT ? this.editInOverlay(editor.document.uri) : undefined));
  }

  private offerDirty(doc: vscode.TextDocument): void {
    const hit = this.lookup(doc.uri);
    const key = doc.uri.toString();
    if (!hit || this.offered.has(key) || !this.unsaved(doc)) return;
    this.offered.add(key);
    this.testing.lowerGuard.push({ uri: key, outcome: 'dirty-offered' });
    void vscode.window
      .showWarningMessage(
        `Unsaved edits on ${doc.uri.fsPath}, a file in ${hit.root.kind === 'lower' ? 'a lower layer' : 'the upper layer of a live mount'} of overlay '${hit.root.overlay}'. It will not be saved there; save your text to the upper copy (${hit.target.toString(true)}) instead?`,
        SAVE_UPPER,
        COMPARE,
        KEEP,
      )
      .then(async (c) => {
        this.offered.delete(key);
        if (c === SAVE_UPPER) await this.editInOverlay(doc.uri);
        else if (c === COMPARE)
          await vscode.commands.executeCommand('vscode.diff', hit.target, doc.uri, `${path.basename(hit.path)}: overlay copy ↔ your edits on the layer`);
      });
  }

  /**
   * Opens the overlay copy of a protected file in place of its editor. A dirty buffer's text
   * is written there first (the copy-up with the user's content) and the buffer reverted.
   */
  async editInOverlay(arg?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    const hit = uri && this.lookup(uri);
    if (!uri || !hit) {
      void vscode.window.showInformationMessage('The active file is not in a lower layer of an overlay.');
      return undefined;
    }
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (doc && this.unsaved(doc)) {
      try {
        await vscode.workspace.fs.writeFile(hit.target, Buffer.from(doc.getText(), 'utf8'));
      } catch (err) {
        void vscode.window.showErrorMessage(
          `Could not write your edits to ${hit.target.toString(true)}: ${String((err as Error).message ?? err)}. They are still in the editor.`,
        );
        return undefined;
      }
      this.testing.lowerGuard.push({ uri: uri.toString(), outcome: 'saved-to-upper' });
      // the text is safe in the upper copy: drop it from the layer's buffer
      await vscode.window.showTextDocument(doc, { preserveFocus: false });
      await vscode.commands.executeCommand('workbench.action.files.revert');
    } else {
      this.testing.lowerGuard.push({ uri: uri.toString(), outcome: 'opened-overlay' });
    }
    const tabsOf = () =>
      vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri.toString());
    const column = tabsOf()[0]?.group.viewColumn ?? vscode.window.activeTextEditor?.viewColumn;
    await vscode.window.showTextDocument(hit.target, { viewColumn: column, preview: false });
    // tab objects go stale when their group changes: look them up after the target opened
    const tabs = tabsOf();
    if (tabs.length) await vscode.window.tabGroups.close(tabs, true);
    return hit.target;
  }

  /**
   * A save is about to reach a protected file (read-only lifted by hand, or a save that
   * started before the protection): the buffer's text goes to the upper copy first, and the
   * buffer is turned back into the file's own text, so what VS Code writes is what is there.
   * VS Code cannot cancel a save; `afterSave` puts back bytes and times should they differ.
   */
  private onWillSave(e: vscode.TextDocumentWillSaveEvent): void {
    const hit = this.lookup(e.document.uri);
    if (!hit) return;
    const file = e.document.uri.fsPath;
    let snap: { data: Buffer; atimeMs: number; mtimeMs: number };
    try {
      const st = fs.statSync(file);
      snap = { data: fs.readFileSync(file), atimeMs: st.atimeMs, mtimeMs: st.mtimeMs };
    } catch {
      return; // not on disk: nothing of the layer to keep
    }
    this.snapshots.set(file, snap);
    const doc = e.document;
    const text = doc.getText();
    const onDisk = snap.data.toString('utf8').replace(/^\uFEFF/, '');
    if (text === onDisk) return;
    e.waitUntil(
      (async () => {
        try {
          await vscode.workspace.fs.writeFile(hit.target, Buffer.from(text, 'utf8'));
        } catch (err) {
          this.failedCopies.set(file, String((err as Error).message ?? err));
          return [];
        }
        this.savedToUpper.set(file, text);
        this.testing.lowerGuard.push({ uri: doc.uri.toString(), outcome: 'saved-to-upper' });
        return [vscode.TextEdit.replace(new vscode.Range(0, 0, doc.lineCount, 0), onDisk)];
      })(),
    );
  }

  /** After a save of a protected file: its bytes and times as before, the user on the upper copy. */
  private async afterSave(doc: vscode.TextDocument): Promise<void> {
    const file = doc.uri.fsPath;
    const hit = this.lookup(doc.uri);
    const snap = this.snapshots.get(file);
    this.snapshots.delete(file);
    if (!hit || !snap) return;
    const saved = this.savedToUpper.get(file);
    const failed = this.failedCopies.get(file);
    this.savedToUpper.delete(file);
    this.failedCopies.delete(file);
    const st = fs.statSync(file);
    if (!fs.readFileSync(file).equals(snap.data)) {
      fs.writeFileSync(file, snap.data);
      this.testing.lowerGuard.push({ uri: doc.uri.toString(), outcome: 'restored-after-save' });
    }
    if (st.mtimeMs !== snap.mtimeMs) fs.utimesSync(file, snap.atimeMs / 1000, snap.mtimeMs / 1000);
    if (failed !== undefined) {
      void vscode.window.showErrorMessage(
        `${file} is in a lower layer: it was not changed, and writing your text to ${hit.target.toString(true)} failed (${failed}). Copy it from the editor's history (Local History) or undo.`,
      );
      return;
    }
    if (saved === undefined) return;
    void vscode.window.showInformationMessage(
      `${path.basename(file)} is in a lower layer, which other stacks may share: your save went to the upper copy ${hit.target.toString(true)}; the layer file is unchanged.`,
    );
    await this.editInOverlay(doc.uri);
  }

  private backup(uri: vscode.Uri): void {
    if (!this.lookup(uri)) return;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-guard-'));
    fs.cpSync(uri.fsPath, path.join(tmp, 'x'), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    this.backups.set(uri.fsPath, tmp);
  }

  private restoreDeleted(uri: vscode.Uri): void {
    const tmp = this.backups.get(uri.fsPath);
    if (!tmp) return;
    this.backups.delete(uri.fsPath);
    if (!fs.existsSync(uri.fsPath)) fs.cpSync(path.join(tmp, 'x'), uri.fsPath, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    this.testing.lowerGuard.push({ uri: uri.toString(), outcome: 'restored-after-delete' });
    void vscode.window.showWarningMessage(
      `${uri.fsPath} is in a lower layer of an overlay, which other stacks may share: it was not deleted. Delete it in the overlay instead (that leaves a whiteout in the upper layer).`,
    );
  }

  private undoRename(from: vscode.Uri, to: vscode.Uri): void {
    if (!this.lookup(from) && !this.lookup(to)) return;
    if (fs.existsSync(to.fsPath) && !fs.existsSync(from.fsPath)) fs.renameSync(to.fsPath, from.fsPath);
    this.testing.lowerGuard.push({ uri: from.toString(), outcome: 'restored-after-rename' });
    void vscode.window.showWarningMessage(
      `${from.fsPath} is in a lower layer of an overlay, which other stacks may share: it was not renamed. Rename it in the overlay instead.`,
    );
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
