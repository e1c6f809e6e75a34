/**
 * No save from the editor lands in a lower layer (client/src/lowerGuard.ts), in a real
 * VS Code with files.autoSave afterDelay — the default of VS Code for the Web.
 *
 * These tests run before overlay.test.ts (file order) on the same demo overlay, so each one
 * removes the upper copies it makes: the later tests count the overlay's changes.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import { overlayApi, screenshot, skipBecause, waitFor } from './harness';

const NAME = 'demo';
const AUTOSAVE_DELAY_MS = 200;

const api = overlayApi;

const hash = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const ov = (p: string) => vscode.Uri.from({ scheme: 'overlay', authority: NAME, path: p });
/** Reverts every dirty buffer (closing a dirty editor would ask), then closes all editors. */
async function revertAndCloseAll(): Promise<void> {
  for (const doc of vscode.workspace.textDocuments.filter((d) => d.isDirty)) {
    await vscode.window.showTextDocument(doc, { preview: false });
    await vscode.commands.executeCommand('workbench.action.files.revert');
  }
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}
const tabUris = () =>
  vscode.window.tabGroups.all.flatMap((g) => g.tabs).map((t) => (t.input instanceof vscode.TabInputText ? t.input.uri.toString() : `<${t.label}>`));

/** Turns autosave on (afterDelay, short) where it wins over the demo workspace's `off`; returns the undo. */
async function autoSaveOn(): Promise<() => Promise<void>> {
  const files = vscode.workspace.getConfiguration('files');
  const target = vscode.workspace.workspaceFile ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  const before = files.inspect('autoSave');
  const beforeDelay = files.inspect('autoSaveDelay');
  const pick = (i: typeof before) => (target === vscode.ConfigurationTarget.Workspace ? i?.workspaceValue : i?.globalValue);
  await files.update('autoSaveDelay', AUTOSAVE_DELAY_MS, target);
  await files.update('autoSave', 'afterDelay', target);
  await waitFor(() => vscode.workspace.getConfiguration('files').get('autoSave') === 'afterDelay', { what: 'files.autoSave afterDelay' });
  return async () => {
    await files.update('autoSave', pick(before), target);
    await files.update('autoSaveDelay', pick(beforeDelay), target);
  };
}

async function autoSaveOff(): Promise<() => Promise<void>> {
  const files = vscode.workspace.getConfiguration('files');
  const target = vscode.workspace.workspaceFile ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  const before = files.inspect('autoSave');
  await files.update('autoSave', 'off', target);
  return async () => files.update('autoSave', target === vscode.ConfigurationTarget.Workspace ? before?.workspaceValue : before?.globalValue, target);
}

/** Waits several autosave periods, checking on every poll that `file` has not changed on disk. */
async function holdsFor(file: string, want: string, periods = 8): Promise<void> {
  const until = Date.now() + periods * AUTOSAVE_DELAY_MS + 500;
  await waitFor(
    () => {
      assert.equal(hash(file), want, `${file} changed on disk`);
      return Date.now() >= until;
    },
    { what: `${periods} autosave periods`, timeoutMs: periods * AUTOSAVE_DELAY_MS + 5000 },
  );
}

/** Whether `files.readonlyInclude` (the merged value) protects `dir`. */
function readonlyGlob(dir: string): boolean {
  const v = vscode.workspace.getConfiguration('files').get<Record<string, boolean>>('readonlyInclude') ?? {};
  return v[`${dir}/**`] === true;
}

/** Types into the editor the way the user does, and through the API; returns whether any edit took. */
async function tryToEdit(editor: vscode.TextEditor, marker: string): Promise<{ api: boolean; typed: boolean }> {
  const before = editor.document.getText();
  const api = await editor.edit((e) => e.insert(new vscode.Position(0, 0), `// ${marker}\n`));
  await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  await vscode.commands.executeCommand('cursorTop');
  await vscode.commands.executeCommand('type', { text: `/* typed ${marker} */` });
  const typed = editor.document.getText().includes(`typed ${marker}`);
  console.log(
    `# edit on a protected file: TextEditor.edit ${api ? 'applied' : 'refused'}, typing ${typed ? 'applied' : 'refused'}; dirty=${editor.document.isDirty}; changed=${editor.document.getText() !== before}`,
  );
  return { api, typed };
}

test('lower guard: with autoSave afterDelay, an edit in a file: editor on a lower file never reaches the disk; Edit in Overlay puts the text in the upper copy', async function () {
  if (vscode.workspace.workspaceFolders?.[0]?.uri.toString() !== `overlay://${NAME}/`) {
    skipBecause(this, 'the demo overlay is not open (run through `node scripts/start.mjs --test`)');
  }
  const a = await api();
  const info = await waitFor(() => a.overlays().find((o) => o.name === NAME), { what: `overlay ${NAME}` });
  const upper = info.stack.upper;
  assert.ok(upper);
  await a.lowerGuard.whenSettled();
  for (const dir of info.stack.lower) await waitFor(() => readonlyGlob(dir), { what: `files.readonlyInclude to hold ${dir}/**` });
  const lowerFile = path.join(info.stack.lower[0], 'src/server.js');
  const lowerUri = vscode.Uri.file(lowerFile);
  assert.equal(a.lowerGuard.lookup(lowerUri)?.target.toString(), ov('/src/server.js').toString());
  const want = hash(lowerFile);
  const mtime = fs.statSync(lowerFile).mtimeMs;
  const upperSrcExisted = fs.existsSync(path.join(upper, 'src'));
  const restore = await autoSaveOn();
  try {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const editor = await vscode.window.showTextDocument(lowerUri, { preview: false });
    await waitFor(() => vscode.window.activeTextEditor?.document.uri.toString() === lowerUri.toString(), { what: 'the lower editor' });
    const took = await tryToEdit(editor, 'autosave must not write this');
    // other extensions' WorkspaceEdits, Save, Save All
    const we = new vscode.WorkspaceEdit();
    we.insert(lowerUri, new vscode.Position(0, 0), '// from a WorkspaceEdit\n');
    const applied = await vscode.workspace.applyEdit(we);
    console.log(
      `# WorkspaceEdit on the protected file: applyEdit → ${applied}; in the buffer: ${editor.document.getText().includes('from a WorkspaceEdit')}; dirty=${editor.document.isDirty}`,
    );
    const saved = await editor.document.save();
    console.log(
      `# after save: dirty=${editor.document.isDirty}; WorkspaceEdit text in the buffer: ${editor.document.getText().includes('from a WorkspaceEdit')}`,
    );
    await vscode.commands.executeCommand('workbench.action.files.saveAll');
    console.log(`# TextDocument.save(): ${saved}`);
    await holdsFor(lowerFile, want);
    assert.equal(fs.statSync(lowerFile).mtimeMs, mtime, 'the lower file was written');
    await screenshot('lower-guard-readonly');

    // what the buffer holds beyond the file (dirty, or edited while read-only) must not be lost
    const doc = editor.document;
    const dirtyText = doc.getText() !== fs.readFileSync(lowerFile, 'utf8') ? doc.getText() : undefined;
    console.log(`# the buffer ${dirtyText === undefined ? 'holds the file as on disk' : `holds edits (dirty=${doc.isDirty}): they go to the upper copy`}`);
    if (dirtyText !== undefined) {
      assert.ok(took.api || took.typed || applied);
      assert.match(dirtyText, /autosave must not write this|from a WorkspaceEdit/, 'the user text is not in the buffer');
      await waitFor(() => a.testing.lowerGuard.entries.some((r) => r.uri === lowerUri.toString() && r.outcome === 'dirty-offered'), {
        what: 'Save to Upper Copy to be offered',
      });
    } else {
      assert.ok(!took.typed, 'the buffer took the typing but kept the file text');
    }
    const target = await a.lowerGuard.editInOverlay(lowerUri);
    assert.equal(target?.toString(), ov('/src/server.js').toString());
    await waitFor(() => tabUris().includes(ov('/src/server.js').toString()) && !tabUris().includes(lowerUri.toString()), {
      what: `the tab to move to the overlay copy; tabs: ${tabUris().join(', ')}`,
    });
    if (dirtyText !== undefined) {
      assert.equal(fs.readFileSync(path.join(upper, 'src/server.js'), 'utf8'), dirtyText, 'the upper copy does not hold the user text');
      assert.ok(a.testing.lowerGuard.entries.some((r) => r.uri === lowerUri.toString() && r.outcome === 'saved-to-upper'));
    }
    assert.equal(hash(lowerFile), want, 'the lower file changed on disk');
    assert.equal(fs.statSync(lowerFile).mtimeMs, mtime);
    await screenshot('lower-guard-edit-in-overlay');
  } finally {
    await revertAndCloseAll();
    await restore();
    fs.rmSync(path.join(upper, 'src/server.js'), { force: true });
    if (!upperSrcExisted) fs.rmSync(path.join(upper, 'src'), { recursive: true, force: true });
  }
});

test('lower guard: read-only lifted by hand — Save writes the text to the upper copy; the lower file stays byte-identical', async function () {
  if (vscode.workspace.workspaceFolders?.[0]?.uri.toString() !== `overlay://${NAME}/`) {
    skipBecause(this, 'the demo overlay is not open (run through `node scripts/start.mjs --test`)');
  }
  const a = await api();
  const info = await waitFor(() => a.overlays().find((o) => o.name === NAME), { what: `overlay ${NAME}` });
  const upper = info.stack.upper;
  assert.ok(upper);
  const lowerFile = path.join(info.stack.lower[1], 'README.md');
  const lowerUri = vscode.Uri.file(lowerFile);
  const want = hash(lowerFile);
  const mtime = Math.floor(fs.statSync(lowerFile).mtimeMs);
  try {
    await revertAndCloseAll();
    const editor = await vscode.window.showTextDocument(lowerUri, { preview: false });
    await vscode.commands.executeCommand('workbench.action.files.setActiveEditorWriteableInSession');
    assert.ok(await editor.edit((e) => e.insert(new vscode.Position(0, 0), '<!-- saved by hand -->\n')));
    assert.ok(editor.document.isDirty, 'the buffer did not take the edit with read-only lifted');
    const mine = editor.document.getText();
    const saved = await editor.document.save();
    console.log(`# save with read-only lifted: ${saved}`);
    await waitFor(() => fs.existsSync(path.join(upper, 'README.md')) && fs.readFileSync(path.join(upper, 'README.md'), 'utf8') === mine, {
      what: 'the upper copy to hold the saved text',
    });
    assert.equal(hash(lowerFile), want, 'the lower file changed on disk');
    assert.equal(Math.floor(fs.statSync(lowerFile).mtimeMs), mtime, 'the lower file mtime changed');
    const outcomes = a.testing.lowerGuard.entries.filter((r) => r.uri === lowerUri.toString()).map((r) => r.outcome);
    console.log(`# guard on that save: ${outcomes.join(', ')} (no restored-after-save: VS Code wrote the file's own bytes)`);
    assert.ok(outcomes.includes('saved-to-upper'));
    await waitFor(() => tabUris().includes(ov('/README.md').toString()) && !tabUris().includes(lowerUri.toString()), {
      what: `the editor to move to the overlay copy; tabs: ${tabUris().join(', ')}`,
    });
    assert.equal(hash(lowerFile), want);
  } finally {
    await revertAndCloseAll();
    fs.rmSync(path.join(upper, 'README.md'), { force: true });
  }
});

test('lower guard: a WorkspaceEdit that deletes a shadowed lower file leaves it on disk', async function () {
  if (vscode.workspace.workspaceFolders?.[0]?.uri.toString() !== `overlay://${NAME}/`) {
    skipBecause(this, 'the demo overlay is not open (run through `node scripts/start.mjs --test`)');
  }
  const a = await api();
  const info = await waitFor(() => a.overlays().find((o) => o.name === NAME), { what: `overlay ${NAME}` });
  // base's greet.js is shadowed by app's: a write or delete there is invisible in the merged view
  const lowerFile = path.join(info.stack.lower[1], 'src/greet.js');
  const want = hash(lowerFile);
  const we = new vscode.WorkspaceEdit();
  we.deleteFile(vscode.Uri.file(lowerFile));
  const applied = await vscode.workspace.applyEdit(we);
  await waitFor(() => fs.existsSync(lowerFile), { what: 'the lower file to exist' });
  const restored = a.testing.lowerGuard.entries.some((r) => r.uri === vscode.Uri.file(lowerFile).toString() && r.outcome === 'restored-after-delete');
  console.log(
    `# WorkspaceEdit deleteFile on a protected file: applyEdit → ${applied}; ${restored ? 'deleted by VS Code, put back by the guard' : 'not deleted by VS Code'}`,
  );
  assert.equal(hash(lowerFile), want);
});

test('lower guard: a live kernel mount — its upper and lower are read-only in the editor; a dirty buffer from before the protection is not autosaved and goes to the merged path', async function () {
  const a = await api();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-guard-'));
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => path.join(dir, n));
  for (const p of [lower, upper, work, merged]) fs.mkdirSync(p);
  fs.writeFileSync(path.join(lower, 'notes.txt'), 'lower 1\nlower 2\n');
  fs.writeFileSync(path.join(upper, 'top.txt'), 'upper 1\nupper 2\n');
  try {
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged], { stdio: 'pipe' });
  } catch (err) {
    skipBecause(this, `cannot mount a kernel overlay here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const lowerFile = path.join(lower, 'notes.txt');
  const upperFile = path.join(upper, 'top.txt');
  const wantLower = hash(lowerFile);
  const wantUpper = hash(upperFile);
  const undoOff = await autoSaveOff();
  let undoOn: (() => Promise<void>) | undefined;
  try {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    // a dirty buffer on the lower file, made before the extension knows the mount
    const dirty = await vscode.window.showTextDocument(vscode.Uri.file(lowerFile), { preview: false });
    assert.ok(await dirty.edit((e) => e.insert(new vscode.Position(0, 0), 'edited before the protection\n')));
    assert.ok(dirty.document.isDirty);

    const count = vscode.workspace.workspaceFolders?.length ?? 0;
    vscode.workspace.updateWorkspaceFolders(count, 0, { uri: vscode.Uri.file(merged), name: 'guarded mount' });
    await waitFor(() => a.lowerGuard.protectedRoots().some((r) => r.kind === 'upper' && r.dir === upper), {
      what: 'the live mount upper to be protected',
      timeoutMs: 15_000,
    });
    await a.lowerGuard.whenSettled();
    await waitFor(() => readonlyGlob(upper) && readonlyGlob(lower), { what: 'files.readonlyInclude to hold the mount layers' });
    assert.equal(a.lowerGuard.lookup(vscode.Uri.file(upperFile))?.target.fsPath, path.join(merged, 'top.txt'));
    await waitFor(() => a.testing.lowerGuard.entries.some((r) => r.uri === vscode.Uri.file(lowerFile).toString() && r.outcome === 'dirty-offered'), {
      what: 'Save to Upper Copy to be offered for the dirty buffer',
    });

    undoOn = await autoSaveOn();
    const upperEditor = await vscode.window.showTextDocument(vscode.Uri.file(upperFile), { preview: false });
    await tryToEdit(upperEditor, 'not into the live upper');
    await holdsFor(lowerFile, wantLower);
    assert.equal(hash(upperFile), wantUpper, 'the upper of the live mount was written directly');
    assert.ok(dirty.document.isDirty, 'the dirty buffer was saved or dropped');
    assert.match(dirty.document.getText(), /edited before the protection/);
    await vscode.commands.executeCommand('notifications.showList');
    await screenshot('lower-guard-kernel-mount');
    await vscode.commands.executeCommand('notifications.hideList');

    // Save to Upper Copy: through the merged path, so the kernel copies up
    const upperText = upperEditor.document.isDirty ? upperEditor.document.getText() : undefined;
    await a.lowerGuard.editInOverlay(vscode.Uri.file(upperFile));
    if (upperText !== undefined) assert.equal(fs.readFileSync(path.join(merged, 'top.txt'), 'utf8'), upperText);
    await a.lowerGuard.editInOverlay(vscode.Uri.file(lowerFile));
    assert.match(fs.readFileSync(path.join(merged, 'notes.txt'), 'utf8'), /edited before the protection/);
    assert.match(fs.readFileSync(path.join(upper, 'notes.txt'), 'utf8'), /edited before the protection/, 'the kernel did not copy up');
    assert.equal(hash(lowerFile), wantLower, 'the lower file changed');
    await waitFor(() => tabUris().includes(vscode.Uri.file(path.join(merged, 'notes.txt')).toString()), {
      what: `the merged editor; tabs: ${tabUris().join(', ')}`,
    });
  } finally {
    await revertAndCloseAll();
    await undoOn?.();
    await undoOff();
    const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.fsPath === merged) ?? -1;
    if (i >= 0) vscode.workspace.updateWorkspaceFolders(i, 1);
    await waitFor(() => !vscode.workspace.workspaceFolders?.some((f) => f.uri.fsPath === merged), { what: 'the mount folder to be removed' });
    await waitFor(() => !a.overlays().some((o) => o.stack.upper === upper), { what: 'the mounted overlay to be closed' }).catch(() => undefined);
    execFileSync('umount', [merged]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}).timeout(60_000);
