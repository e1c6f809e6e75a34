/**
 * The extension in a real VS Code, on the demo overlay (test/fixtures/demo, prepared by
 * `node scripts/start.mjs --test`, which runs this suite; run any other way, the first
 * test prepares the demo and opens it, and the suite resumes in the reloaded window).
 * The tests share one overlay and run in order: each one leaves the state the next one
 * starts from.
 *
 * "Outside" copy-ups are made by another process: the overlayws CLI (the same engine,
 * a different process), exactly like a container or a second tool writing the stack.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import type { OverlayApi } from '../../client/src/api';
import { overlayApi, resumed, screenshot, skipBecause, waitFor } from './harness';

const REPO = path.resolve(__dirname, '../../..');
const NAME = 'demo';

interface Demo {
  api: OverlayApi;
  lower: string[];
  upper: string;
  work: string;
  whiteouts: string;
}

let cached: Demo | undefined;

async function demo(): Promise<Demo> {
  if (cached) return cached;
  const api = await overlayApi();
  const info = await waitFor(() => api.overlays().find((o) => o.name === NAME), { what: `overlay ${NAME} open on the server`, timeoutMs: 15_000 });
  assert.ok(info.stack.upper && info.stack.work, 'the demo overlay has no upper');
  cached = { api, lower: info.stack.lower, upper: info.stack.upper, work: info.stack.work, whiteouts: info.stack.whiteouts ?? 'kernel' };
  return cached;
}

const ov = (p: string) => vscode.Uri.from({ scheme: 'overlay', authority: NAME, path: p });
const text = async (uri: vscode.Uri) => Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');

/** Copy-up by another process: `overlayws chmod` on the same stack copies the file up without changing it. */
function outsideCopyUp(d: Demo, p: string): void {
  execFileSync(
    process.execPath,
    [path.join(REPO, 'bin/overlayws.js'), '--lower', d.lower.join(':'), '--upper', d.upper, '--work', d.work, '--whiteouts', d.whiteouts, 'chmod', '644', p],
    { stdio: 'pipe' },
  );
  assert.ok(fs.existsSync(path.join(d.upper, p)), `the CLI did not copy ${p} up`);
}

function tabUris(group = vscode.window.tabGroups.activeTabGroup): string[] {
  return group.tabs.map((t) => (t.input instanceof vscode.TabInputText ? t.input.uri.toString() : `<${t.label}>`));
}

test('overlay: the demo workspace opens as an overlay folder; the explorer lists the merged tree, whiteouts hidden', async function () {
  if (vscode.workspace.workspaceFolders?.[0]?.uri.toString() !== 'overlay://demo/') {
    // Run without `--open demo.code-workspace` (e.g. by npm test): prepare a fresh demo and
    // open it; the window reloads and the runner resumes this test there.
    assert.ok(!resumed(), `the demo workspace did not open after the reload (${vscode.workspace.workspaceFile?.toString()})`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-demo-'));
    const workspaceFile = execFileSync(process.execPath, [path.join(REPO, 'scripts/start.mjs'), '--prepare', path.join(dir, 'demo')], {
      encoding: 'utf8',
    }).trim();
    console.log(`# opening the demo overlay workspace ${workspaceFile}`);
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(workspaceFile));
    await new Promise(() => undefined); // the extension host ends with the reload
  }
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder);
  assert.equal(folder.uri.toString(), 'overlay://demo/');
  const d = await demo();
  const root = (await vscode.workspace.fs.readDirectory(ov('/'))).map(([n]) => n).sort();
  assert.deepEqual(root, ['README.md', 'config', 'docs', 'src', 'ts']);
  const src = await vscode.workspace.fs.readDirectory(ov('/src'));
  assert.deepEqual(src.map(([n]) => n).sort(), ['app.js', 'greet.js', 'server.js'], 'legacy.js is whited out by the app layer');
  assert.ok(src.every(([, t]) => t === vscode.FileType.File));
  // real mtime and size, from the layer that serves the file
  const st = await vscode.workspace.fs.stat(ov('/src/greet.js'));
  const real = fs.statSync(path.join(d.lower[0], 'src/greet.js'));
  assert.equal(st.size, real.size);
  assert.equal(Math.floor(st.mtime), Math.floor(real.mtimeMs));
  assert.match(await text(ov('/src/greet.js')), /from the app layer/);
  await assert.rejects(
    () => Promise.resolve(vscode.workspace.fs.stat(ov('/src/legacy.js'))),
    (e: unknown) => e instanceof vscode.FileSystemError && e.code === 'FileNotFound',
  );

  await vscode.commands.executeCommand('workbench.view.explorer');
  await vscode.window.showTextDocument(ov('/src/greet.js'), { preview: false });
  await vscode.commands.executeCommand('revealInExplorer', ov('/src/greet.js'));
  await screenshot('overlay-explorer');
});

test('overlay: editing and saving a lower file copies it up and leaves the lower file byte-identical', async () => {
  const d = await demo();
  const lowerFile = path.join(d.lower[0], 'src/greet.js');
  const lowerBefore = fs.readFileSync(lowerFile);
  const lowerMtime = fs.statSync(lowerFile).mtimeMs;
  const doc = await vscode.workspace.openTextDocument(ov('/src/greet.js'));
  const editor = await vscode.window.showTextDocument(doc, { preview: false });
  const at = doc.getText().indexOf('from the app layer');
  assert.ok(at > 0);
  await editor.edit((e) => e.replace(new vscode.Range(doc.positionAt(at), doc.positionAt(at + 'from the app layer'.length)), 'edited in VS Code'));
  assert.ok(doc.isDirty);
  const t0 = Date.now();
  assert.ok(await doc.save(), 'save failed');
  console.log(`# save with copy-up took ${Date.now() - t0} ms`);
  const upperFile = path.join(d.upper, 'src/greet.js');
  assert.ok(fs.existsSync(upperFile), 'no upper copy after save');
  assert.match(fs.readFileSync(upperFile, 'utf8'), /edited in VS Code/);
  assert.ok(fs.readFileSync(lowerFile).equals(lowerBefore), 'the lower file changed on disk');
  assert.equal(fs.statSync(lowerFile).mtimeMs, lowerMtime);
  assert.match(await text(ov('/src/greet.js')), /edited in VS Code/);
  await screenshot('overlay-copy-up');
});

test('overlay: deleting a lower file leaves a whiteout and the lower file', async () => {
  const d = await demo();
  const lowerFile = path.join(d.lower[1], 'docs/history.md');
  const lowerBefore = fs.readFileSync(lowerFile);
  await vscode.workspace.fs.delete(ov('/docs/history.md'));
  if (d.whiteouts === 'oci') {
    assert.ok(fs.existsSync(path.join(d.upper, 'docs/.wh.history.md')), 'no OCI whiteout');
  } else {
    const st = fs.lstatSync(path.join(d.upper, 'docs/history.md'));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, 'no kernel whiteout (char device 0/0)');
  }
  assert.ok(fs.readFileSync(lowerFile).equals(lowerBefore));
  await assert.rejects(() => Promise.resolve(vscode.workspace.fs.stat(ov('/docs/history.md'))));
  assert.deepEqual(
    (await vscode.workspace.fs.readDirectory(ov('/docs'))).map(([n]) => n),
    ['guide.md'],
  );
});

test('read-ahead: a listing brings the directories below it; an outside change or a write of this window shows at once', async () => {
  const d = await demo();
  const ra = d.api.readAhead;
  const names = async (p: string) => (await vscode.workspace.fs.readDirectory(ov(p))).map(([n]) => n).sort();
  // Events of the previous test may still arrive and drop the read-ahead: a few tries.
  let served = false;
  for (let i = 0; i < 5 && !served; i++) {
    await names('/');
    assert.ok(ra.size > 0, 'nothing read ahead below /');
    const hits = ra.hits;
    assert.ok((await names('/config')).includes('settings.json'));
    served = ra.hits === hits + 1;
  }
  assert.ok(served, '/config was never served from the read-ahead');

  // Another process adds a file to the upper layer: the change event drops what was read ahead.
  await names('/');
  assert.ok(ra.size > 0);
  const outside = path.join(d.upper, 'src/outside-e2e.js');
  const changes = ra.changes;
  fs.writeFileSync(outside, '// made outside\n');
  try {
    await waitFor(() => ra.changes > changes, { what: 'the outside change seen by the read-ahead' });
    assert.ok((await names('/src')).includes('outside-e2e.js'));
  } finally {
    fs.rmSync(outside, { force: true });
  }
  await waitFor(async () => !(await names('/src')).includes('outside-e2e.js'), { what: 'the outside file gone from the listing' });

  // A write of this window: the next listing shows it without waiting for the event.
  await names('/');
  assert.ok(ra.size > 0);
  await vscode.workspace.fs.writeFile(ov('/docs/new-e2e.md'), Buffer.from('new\n'));
  try {
    assert.deepEqual(await names('/docs'), ['guide.md', 'new-e2e.md']);
  } finally {
    await vscode.workspace.fs.delete(ov('/docs/new-e2e.md'));
  }
  assert.deepEqual(await names('/docs'), ['guide.md']);
});

test('overlay editors follow outside writes: a clean editor shows what another process wrote, then the lower copy again when that is removed', async () => {
  const d = await demo();
  const doc = await vscode.workspace.openTextDocument(ov('/docs/guide.md'));
  await vscode.window.showTextDocument(doc, { preview: false });
  const lowerText = doc.getText();
  const upperCopy = path.join(d.upper, 'docs/guide.md');
  assert.ok(!fs.existsSync(upperCopy));
  fs.writeFileSync(upperCopy, 'written by another process\n');
  try {
    await waitFor(() => doc.getText() === 'written by another process\n', { what: 'the editor showing the outside write' });
  } finally {
    fs.rmSync(upperCopy, { force: true });
  }
  await waitFor(() => doc.getText() === lowerText, { what: 'the editor back on the lower copy' });
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
});

test('watching follows VS Code: its watch of the folder root reaches the server, and another process adding a file to a lower directory it lists is an event', async () => {
  const d = await demo();
  const asked = d.api.testing.watches.entries;
  console.log(
    `# VS Code asked the overlay provider to watch: ${asked.map((w) => `${w.op} ${w.name}:${w.path}${w.recursive ? ' (recursive)' : ''}`).join(', ')}`,
  );
  assert.ok(
    asked.some((w) => w.op === 'watch' && w.name === NAME && w.path === '/' && w.recursive),
    'VS Code did not ask to watch the folder root recursively',
  );
  const created: string[] = [];
  const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(ov('/docs'), '*.md'));
  watcher.onDidCreate((u) => created.push(u.path));
  const made: string[] = [];
  try {
    await vscode.workspace.fs.readDirectory(ov('/docs')); // as the explorer lists it: the server follows /docs in each lower
    // The server's watch of the lower's docs/ is in place shortly after the listing: another process adds files until one is seen.
    await waitFor(
      () => {
        if (created.length > 0) return true;
        const f = path.join(d.lower[0], 'docs', `lower-e2e-${made.length}.md`);
        fs.writeFileSync(f, 'added to a lower layer by another process\n');
        made.push(f);
        return false;
      },
      { what: 'a Created event for a file added to the lower docs/', intervalMs: 500 },
    );
    assert.ok(created[0].startsWith('/docs/lower-e2e-'), created[0]);
    console.log(`# lower file seen after ${made.length} attempt(s)`);
  } finally {
    watcher.dispose();
    for (const f of made) fs.rmSync(f, { force: true });
  }
});

test('stale editors: an outside copy-up replaces a clean editor on the lower real path, same position and selection', async () => {
  const d = await demo();
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  const lowerUri = vscode.Uri.file(path.join(d.lower[1], 'config/settings.json'));
  await vscode.window.showTextDocument(ov('/README.md'), { preview: false });
  await vscode.window.showTextDocument(lowerUri, { preview: false });
  await vscode.window.showTextDocument(ov('/src/app.js'), { preview: false });
  const editor = await vscode.window.showTextDocument(lowerUri, { preview: false });
  editor.selection = new vscode.Selection(2, 3, 2, 11);
  const before = tabUris();
  assert.equal(before[1], lowerUri.toString());

  const t0 = Date.now();
  outsideCopyUp(d, '/config/settings.json');
  const target = ov('/config/settings.json').toString();
  await waitFor(() => tabUris()[1] === target && !tabUris().includes(lowerUri.toString()), {
    what: `tab 1 to become ${target}; tabs: ${tabUris().join(', ')}`,
  });
  console.log(`# outside copy-up → editor redirected in ${Date.now() - t0} ms`);
  assert.deepEqual(tabUris(), [before[0], target, before[2]]);
  const active = vscode.window.activeTextEditor;
  assert.equal(active?.document.uri.toString(), target);
  assert.deepEqual([active.selection.start.line, active.selection.start.character, active.selection.end.character], [2, 3, 11]);
  assert.ok(d.api.testing.staleEditors.entries.some((r) => r.outcome === 'redirected' && r.current === target));
  await screenshot('stale-editor-redirected');
});

test('stale editors: a background tab in another group is replaced in place; focus and active tabs stay', async () => {
  const d = await demo();
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  const lowerUri = vscode.Uri.file(path.join(d.lower[1], 'src/app.js'));
  await vscode.window.showTextDocument(ov('/README.md'), { preview: false, viewColumn: vscode.ViewColumn.One });
  await vscode.window.showTextDocument(lowerUri, { preview: false, viewColumn: vscode.ViewColumn.Two });
  await vscode.window.showTextDocument(ov('/src/server.js'), { preview: false, viewColumn: vscode.ViewColumn.Two });
  await vscode.window.showTextDocument(ov('/README.md'), { preview: false, viewColumn: vscode.ViewColumn.One });
  const group2 = () => vscode.window.tabGroups.all.find((g) => g.viewColumn === vscode.ViewColumn.Two);
  assert.deepEqual(tabUris(group2()), [lowerUri.toString(), ov('/src/server.js').toString()]);

  outsideCopyUp(d, '/src/app.js');
  const target = ov('/src/app.js').toString();
  await waitFor(() => d.api.testing.staleEditors.entries.some((r) => r.current === target), { what: `the redirection of ${lowerUri.toString()}` });
  assert.deepEqual(tabUris(group2()), [target, ov('/src/server.js').toString()]);
  const active2 = group2()?.activeTab?.input;
  assert.ok(active2 instanceof vscode.TabInputText && active2.uri.toString() === ov('/src/server.js').toString(), 'the active tab of group 2 changed');
  assert.equal(vscode.window.tabGroups.activeTabGroup.viewColumn, vscode.ViewColumn.One, 'focus left group 1');
  await screenshot('stale-editor-background-tab');
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
});

test('stale editors: a dirty editor on the lower real path is kept, and its edits can be applied to the upper copy', async () => {
  const d = await demo();
  const lowerFile = path.join(d.lower[0], 'docs/guide.md');
  const lowerBefore = fs.readFileSync(lowerFile);
  const lowerUri = vscode.Uri.file(lowerFile);
  const editor = await vscode.window.showTextDocument(lowerUri, { preview: false });
  // lower files are read-only in the editor (lowerGuard.ts): a dirty one exists only when the user lifts that
  await vscode.commands.executeCommand('workbench.action.files.setActiveEditorWriteableInSession');
  await editor.edit((e) => e.insert(new vscode.Position(1, 0), '\nMy unsaved note.\n'));
  assert.ok(editor.document.isDirty);

  outsideCopyUp(d, '/docs/guide.md');
  const item = await waitFor(() => d.api.staleEditors.pending.find((p) => p.stale.toString() === lowerUri.toString()), {
    what: 'the dirty stale editor to be offered Compare / Apply / Keep',
  });
  // nothing was discarded, nothing written to the lower layer
  assert.ok(tabUris().includes(lowerUri.toString()));
  assert.ok(editor.document.isDirty);
  assert.match(editor.document.getText(), /My unsaved note/);
  assert.ok(fs.readFileSync(lowerFile).equals(lowerBefore));
  await vscode.commands.executeCommand('notifications.showList');
  await screenshot('stale-editor-dirty');
  await vscode.commands.executeCommand('notifications.hideList');

  await d.api.staleEditors.resolve(item, 'apply');
  assert.match(fs.readFileSync(path.join(d.upper, 'docs/guide.md'), 'utf8'), /My unsaved note/);
  assert.ok(fs.readFileSync(lowerFile).equals(lowerBefore), 'the lower file changed on disk');
  await waitFor(() => tabUris().includes(ov('/docs/guide.md').toString()) && !tabUris().includes(lowerUri.toString()), {
    what: 'the tab to move to the overlay copy',
  });
  const doc = vscode.workspace.textDocuments.find((t) => t.uri.toString() === ov('/docs/guide.md').toString());
  assert.ok(doc && !doc.isDirty);
});

test('stale editors: a kernel-mounted overlay opened as a plain folder — an editor on the lower real path moves to the merged path', async function () {
  const d = await demo();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-kmount-'));
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => path.join(dir, n));
  for (const p of [lower, upper, work, merged]) fs.mkdirSync(p);
  fs.writeFileSync(path.join(lower, 'notes.txt'), 'line 1\nline 2\nline 3\n');
  try {
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged], { stdio: 'pipe' });
  } catch (err) {
    // needs root (or a user namespace the extension host is not in); the rest of the suite does not
    skipBecause(this, `cannot mount a kernel overlay here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const count = vscode.workspace.workspaceFolders?.length ?? 0;
  try {
    vscode.workspace.updateWorkspaceFolders(count, 0, { uri: vscode.Uri.file(merged), name: 'kernel mount' });
    await waitFor(() => d.api.overlays().some((o) => o.stack.upper === upper), { what: 'the mounted overlay to be opened on the server' });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const lowerUri = vscode.Uri.file(path.join(lower, 'notes.txt'));
    const editor = await vscode.window.showTextDocument(lowerUri, { preview: false });
    editor.selection = new vscode.Selection(1, 2, 1, 4);
    // the kernel copies up: chmod through the merged directory, by another process
    execFileSync('chmod', ['600', path.join(merged, 'notes.txt')]);
    assert.ok(fs.existsSync(path.join(upper, 'notes.txt')), 'the kernel did not copy up');
    const target = vscode.Uri.file(path.join(merged, 'notes.txt')).toString();
    await waitFor(() => d.api.testing.staleEditors.entries.some((r) => r.current === target && r.outcome === 'redirected'), {
      what: `the editor to move to ${target}; tabs: ${tabUris().join(', ')}`,
    });
    assert.deepEqual(tabUris(), [target]);
    assert.deepEqual([vscode.window.activeTextEditor?.selection.start.line, vscode.window.activeTextEditor?.selection.start.character], [1, 2]);
    await screenshot('stale-editor-kernel-mount');
  } finally {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.fsPath === merged) ?? -1;
    if (i >= 0) vscode.workspace.updateWorkspaceFolders(i, 1);
    await waitFor(() => !vscode.workspace.workspaceFolders?.some((f) => f.uri.fsPath === merged), { what: 'the mount folder to be removed' });
    await waitFor(() => !d.api.overlays().some((o) => o.stack.upper === upper), { what: 'the mounted overlay to be closed' }).catch(() => undefined);
    execFileSync('umount', [merged]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('compare with lower: the lower copy against the current one', async () => {
  await vscode.commands.executeCommand('overlay.compareWithLower', ov('/src/greet.js'));
  const tab = await waitFor(
    () => {
      const t = vscode.window.tabGroups.activeTabGroup.activeTab;
      return t?.input instanceof vscode.TabInputTextDiff ? t.input : undefined;
    },
    { what: 'a diff editor' },
  );
  assert.equal(tab.modified.toString(), ov('/src/greet.js').toString());
  assert.equal(tab.original.scheme, 'overlay-layer');
  const original = await vscode.workspace.openTextDocument(tab.original);
  assert.match(original.getText(), /from the app layer/);
  await screenshot('compare-with-lower');
});

test('changes view: Added, Modified and Deleted groups; Revert drops the upper copy or the whiteout', async () => {
  const d = await demo();
  await vscode.workspace.fs.createDirectory(ov('/notes'));
  await vscode.workspace.fs.writeFile(ov('/notes/todo.md'), Buffer.from('# To do\n\n- try the overlay\n'));
  const paths = (k: 'A' | 'C' | 'D') => (d.api.changes.group(NAME, k)?.resourceStates ?? []).map((r) => r.resourceUri.path).sort();
  await d.api.changes.refresh();
  await waitFor(
    async () => {
      await d.api.changes.refresh();
      return paths('A').includes('/notes/todo.md') && paths('C').includes('/src/greet.js') && paths('D').includes('/docs/history.md');
    },
    { what: 'the changes view groups' },
  );
  // /config/settings.json and /src/app.js were copied up by `chmod 644` of 644 files (outsideCopyUp, in the
  // stale-editor tests above): a copy-up that changes nothing docker diff compares (mode, owner, size, mtime)
  // is no change in Docker's naive form, which the changes view shows.
  assert.deepEqual(paths('C'), ['/docs/guide.md', '/src/greet.js']);
  assert.deepEqual(paths('D'), ['/docs/history.md']);
  assert.ok(paths('A').includes('/notes/todo.md'));
  await vscode.commands.executeCommand('workbench.view.scm');
  await screenshot('changes-view');

  const greet = await vscode.workspace.openTextDocument(ov('/src/greet.js'));
  d.api.testing.autoConfirm = true;
  try {
    const modified = d.api.changes.group(NAME, 'C')?.resourceStates.find((r) => r.resourceUri.path === '/src/greet.js');
    const deleted = d.api.changes.group(NAME, 'D')?.resourceStates.find((r) => r.resourceUri.path === '/docs/history.md');
    await vscode.commands.executeCommand('overlay.revert', modified);
    await vscode.commands.executeCommand('overlay.revert', deleted);
  } finally {
    d.api.testing.autoConfirm = false;
  }
  assert.ok(!fs.existsSync(path.join(d.upper, 'src/greet.js')));
  assert.match(await text(ov('/src/greet.js')), /from the app layer/);
  assert.match(await text(ov('/docs/history.md')), /base layer created/);
  assert.ok(!paths('C').includes('/src/greet.js') && !paths('D').includes('/docs/history.md'));
  // the open (clean) editor follows the file back to the lower copy: VS Code's own reload
  await waitFor(() => /from the app layer/.test(greet.getText()), { what: 'the open editor to reload the reverted file' });
});

test('changes view shows what overlayws diff prints; Export Changes as Layer writes an OCI layer tarball', async () => {
  const d = await demo();
  await d.api.changes.refresh();
  const view = new Set(d.api.changes.changes(NAME).map((c) => `${c.kind} ${c.path}`));
  const cli = execFileSync(
    process.execPath,
    [path.join(REPO, 'bin/overlayws.js'), '--lower', d.lower.join(':'), '--upper', d.upper, '--work', d.work, '--whiteouts', d.whiteouts, 'diff'],
    { encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .filter(Boolean);
  // The view lists files (directories are only parents of changes); deletions of any type.
  const cliFiles = cli.filter((l) => l.startsWith('D ') || !fs.lstatSync(path.join(d.upper, l.slice(2))).isDirectory());
  assert.deepEqual([...view].sort(), cliFiles.sort());
  const tarball = path.join(os.tmpdir(), `overlayws-e2e-export-${process.pid}.tar.gz`);
  try {
    const written = await vscode.commands.executeCommand<string | undefined>('overlay.exportChanges', ov('/'), vscode.Uri.file(tarball));
    assert.equal(written, tarball);
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    assert.ok(listing.includes('notes/todo.md'), `tarball lists: ${listing.join(' ')}`);
    for (const line of cliFiles.filter((l) => l.startsWith('D '))) {
      const p = line.slice(3);
      assert.ok(listing.includes(`${path.posix.dirname(p)}/.wh.${path.posix.basename(p)}`.replace(/^\//, '')), `no OCI whiteout for ${p}`);
    }
  } finally {
    fs.rmSync(tarball, { force: true });
  }
});

test('quick diff and decorations: the lower copy is the original of a copied-up file; M and A badges', async () => {
  const d = await demo();
  await d.api.changes.refresh();
  const modified = d.api.changes.changes(NAME).find((c) => c.kind === 'C');
  const added = d.api.changes.changes(NAME).find((c) => c.kind === 'A');
  assert.ok(modified && added, 'the demo has a modified and an added file by now');
  const original = await d.api.changes.provideOriginalResource(ov(modified.path));
  assert.ok(original, 'an original resource for quick diff');
  const lowerText = Buffer.from(await vscode.workspace.fs.readFile(original)).toString();
  const lowerReal = d.lower.map((l) => path.join(l, modified.path)).find((p) => fs.existsSync(p));
  assert.ok(lowerReal);
  assert.equal(lowerText, fs.readFileSync(lowerReal, 'utf8'), 'the quick-diff original is the lower copy');
  assert.equal(d.api.changes.provideFileDecoration(ov(modified.path))?.badge, 'M');
  assert.equal(d.api.changes.provideFileDecoration(ov(added.path))?.badge, 'A');
  assert.equal(d.api.changes.provideFileDecoration(ov('/README.md'))?.badge, undefined);
});

test('open commands: folders as an overlay, a Docker overlay2 layer directory, a mounted overlay — each adds a workspace folder and saves its definition', async function () {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-open-'));
  const added: string[] = [];
  let mounted: string | undefined;
  try {
    // Folders as an overlay.
    for (const dir of ['l/sub', 'u', 'w']) fs.mkdirSync(path.join(tmp, dir), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'l/sub/hello.txt'), 'hello from a lower folder\n');
    const folders = await vscode.commands.executeCommand<string | undefined>('overlay.openFolders', {
      lower: [path.join(tmp, 'l')],
      upper: path.join(tmp, 'u'),
      work: path.join(tmp, 'w'),
      name: 'e2e-folders',
    });
    assert.equal(folders, 'e2e-folders');
    added.push(folders);
    // A Docker overlay2 layer directory: <root>/<id>/{diff,lower,work}, lower = l/<short> links.
    const d2 = path.join(tmp, 'overlay2');
    for (const dir of ['base/diff/etc', 'ctr/diff', 'ctr/work', 'l']) fs.mkdirSync(path.join(d2, dir), { recursive: true });
    fs.writeFileSync(path.join(d2, 'base/diff/etc/os-release'), 'ID=demo\n');
    fs.symlinkSync('../base/diff', path.join(d2, 'l/BASE'));
    fs.writeFileSync(path.join(d2, 'ctr/lower'), 'l/BASE');
    const docker = await vscode.commands.executeCommand<string | undefined>('overlay.openDocker', path.join(d2, 'ctr'));
    assert.ok(docker, 'the overlay2 layer directory opened');
    added.push(docker);
    for (const [name, file, text] of [
      [folders, '/sub/hello.txt', 'hello from a lower folder'],
      [docker, '/etc/os-release', 'ID=demo'],
    ]) {
      await waitFor(() => (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.toString() === `overlay://${name}/`), {
        what: `workspace folder overlay://${name}/`,
      });
      const uri = vscode.Uri.from({ scheme: 'overlay', authority: name, path: file });
      assert.match(Buffer.from(await vscode.workspace.fs.readFile(uri)).toString(), new RegExp(text));
    }
    const saved = vscode.workspace.getConfiguration('overlay').get<Record<string, { lower: string[] }>>('overlays') ?? {};
    assert.deepEqual(saved[folders].lower, [path.join(tmp, 'l')]);
    assert.ok(saved[docker], 'the Docker definition is saved in overlay.overlays');
    // A mounted overlay, from /proc/self/mountinfo.
    for (const dir of ['ml', 'mu', 'mw', 'merged']) fs.mkdirSync(path.join(tmp, dir));
    fs.writeFileSync(path.join(tmp, 'ml/mounted.txt'), 'through the kernel\n');
    try {
      execFileSync(
        'mount',
        [
          '-t',
          'overlay',
          'overlay',
          '-o',
          `lowerdir=${path.join(tmp, 'ml')},upperdir=${path.join(tmp, 'mu')},workdir=${path.join(tmp, 'mw')}`,
          path.join(tmp, 'merged'),
        ],
        { stdio: 'pipe' },
      );
      mounted = path.join(tmp, 'merged');
    } catch (err) {
      skipBecause(
        this,
        `folders and Docker opened; cannot mount a kernel overlay here for the mounted-overlay part: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
      );
    }
    const mount = await vscode.commands.executeCommand<string | undefined>('overlay.openMount', mounted);
    assert.ok(mount, 'the mounted overlay opened');
    added.push(mount);
    const uri = vscode.Uri.from({ scheme: 'overlay', authority: mount, path: '/mounted.txt' });
    assert.match(Buffer.from(await vscode.workspace.fs.readFile(uri)).toString(), /through the kernel/);
  } finally {
    // They were appended at the end, together: remove them in one step.
    const all = vscode.workspace.workspaceFolders ?? [];
    const idx = all.map((f, i) => (added.some((n) => f.uri.toString() === `overlay://${n}/`) ? i : -1)).filter((i) => i > 0);
    if (idx.length > 0) {
      const removed = new Promise<void>((resolve) => {
        const sub = vscode.workspace.onDidChangeWorkspaceFolders(() => {
          sub.dispose();
          resolve();
        });
      });
      if (vscode.workspace.updateWorkspaceFolders(Math.min(...idx), idx.length)) await Promise.race([removed, new Promise((r) => setTimeout(r, 10_000))]);
    }
    const config = vscode.workspace.getConfiguration('overlay');
    const current = { ...(config.inspect<Record<string, unknown>>('overlays')?.workspaceValue ?? {}) };
    for (const name of added) delete current[name];
    await config.update('overlays', current, vscode.ConfigurationTarget.Workspace);
    if (mounted) {
      try {
        execFileSync('umount', [mounted]);
      } catch {
        /* busy: left for the OS */
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('progress: a write slower than overlay.progressDelayMs shows a progress notification', async () => {
  const d = await demo();
  const config = vscode.workspace.getConfiguration('overlay');
  const before = config.inspect<number>('progressDelayMs')?.workspaceValue;
  await config.update('progressDelayMs', 0, vscode.ConfigurationTarget.Workspace);
  try {
    const shown = d.api.testing.progressShown.entries.length;
    await vscode.workspace.fs.writeFile(ov('/big-progress.bin'), Buffer.alloc(16 << 20, 7));
    assert.ok(d.api.testing.progressShown.entries.length > shown, 'a progress notification was shown');
    assert.match(d.api.testing.progressShown.entries[d.api.testing.progressShown.entries.length - 1], /big-progress\.bin/);
    await vscode.workspace.fs.delete(ov('/big-progress.bin'));
  } finally {
    await config.update('progressDelayMs', before, vscode.ConfigurationTarget.Workspace);
  }
});

test('single-layer views: a read-only folder per layer; an editor on a layer view follows a copy-up', async () => {
  const d = await demo();
  await vscode.commands.executeCommand('overlay.openLayer', NAME, 0);
  const layerRoot = vscode.Uri.from({ scheme: 'overlay-layer', authority: NAME, path: '/0/' });
  await waitFor(() => vscode.workspace.workspaceFolders?.some((f) => f.uri.toString() === layerRoot.toString()), { what: 'the layer folder' });
  try {
    const names = (await vscode.workspace.fs.readDirectory(layerRoot.with({ path: '/0/src' }))).map(([n]) => n).sort();
    assert.ok(names.includes('greet.js') && names.includes('server.js'));
    const layerFile = layerRoot.with({ path: '/0/src/greet.js' });
    const st = await vscode.workspace.fs.stat(layerFile);
    assert.equal(st.permissions, vscode.FilePermission.Readonly);
    await assert.rejects(() => Promise.resolve(vscode.workspace.fs.writeFile(layerFile, Buffer.from('x'))));

    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.window.showTextDocument(layerFile, { preview: false });
    outsideCopyUp(d, '/src/greet.js');
    const target = ov('/src/greet.js').toString();
    await waitFor(() => d.api.testing.staleEditors.entries.some((r) => r.stale === layerFile.toString() && r.outcome === 'redirected'), {
      what: `the layer-view editor to move to ${target}; tabs: ${tabUris().join(', ')}`,
    });
    assert.deepEqual(tabUris(), [target]);
  } finally {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.toString() === layerRoot.toString()) ?? -1;
    if (i >= 0) vscode.workspace.updateWorkspaceFolders(i, 1);
    await waitFor(() => !vscode.workspace.workspaceFolders?.some((f) => f.uri.toString() === layerRoot.toString()), { what: 'the layer folder to be removed' });
  }
});

test('search: workspace.findFiles on the overlay folder answers (or, without a search provider, returns when cancelled); Find File, Search Text and the Search panel work', async () => {
  const d = await demo();
  // What 1.139 allows: registering a search provider is a proposed API.
  const ws = vscode.workspace as unknown as { registerFileSearchProvider?: (scheme: string, provider: object) => vscode.Disposable };
  let providers = false;
  let probe = 'registerFileSearchProvider is not in the API';
  if (typeof ws.registerFileSearchProvider === 'function') {
    try {
      ws.registerFileSearchProvider('overlay-probe', { provideFileSearchResults: () => [] }).dispose();
      providers = true;
      probe = 'registerFileSearchProvider is allowed here';
    } catch (err) {
      probe = `registerFileSearchProvider throws: ${String((err as Error).message ?? err).split('\n')[0]}`;
    }
  }
  console.log(`# ${probe}`);

  const cts = new vscode.CancellationTokenSource();
  const timer = setTimeout(() => cts.cancel(), 5000);
  const t0 = Date.now();
  const found = await Promise.race([
    Promise.resolve(vscode.workspace.findFiles('**/*.js', undefined, 10, cts.token)),
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), 8000)),
  ]);
  clearTimeout(timer);
  assert.notEqual(found, 'hung', 'workspace.findFiles did not return even after cancellation');
  const uris = found as vscode.Uri[];
  console.log(
    `# workspace.findFiles('**/*.js') on overlay: ${uris.length} result(s) in ${Date.now() - t0} ms${cts.token.isCancellationRequested ? ' (cancelled: no search provider for the scheme)' : ''}`,
  );
  if (providers) {
    assert.deepEqual(
      uris.map((u) => u.toString()).sort(),
      ['/src/app.js', '/src/greet.js', '/src/server.js'].map((p) => ov(p).toString()),
    );
  }

  const t1 = Date.now();
  const files = (await vscode.commands.executeCommand<vscode.Uri[]>('overlay.findFile', 'greet')) ?? [];
  console.log(`# overlay.findFile: ${files.length} result(s) in ${Date.now() - t1} ms`);
  assert.deepEqual(files.map((u) => u.toString()).sort(), [ov('/src/greet.js').toString(), ov('/ts/greet.ts').toString()]);
  const all = (await vscode.commands.executeCommand<vscode.Uri[]>('overlay.findFile', '**/*.js')) ?? [];
  assert.deepEqual(all.map((u) => u.path).sort(), ['/src/app.js', '/src/greet.js', '/src/server.js'], 'whited-out legacy.js must not be found');

  const t2 = Date.now();
  const matches = (await vscode.commands.executeCommand<{ uri: vscode.Uri; range: vscode.Range }[]>('overlay.searchText', 'greet(')) ?? [];
  console.log(`# overlay.searchText: ${matches.length} match(es) in ${Date.now() - t2} ms`);
  assert.ok(
    matches.some((m) => m.uri.path === '/src/app.js'),
    'no match in src/app.js',
  );
  const hidden = (await vscode.commands.executeCommand<unknown[]>('overlay.searchText', 'Removed in the app layer')) ?? [];
  assert.equal(hidden.length, 0, 'text of a whited-out file was found');

  if (providers) {
    const before = d.api.testing.search.textSearches;
    await vscode.commands.executeCommand('workbench.action.findInFiles', { query: 'greet', triggerSearch: true });
    await waitFor(() => d.api.testing.search.textSearches > before && d.api.testing.search.lastTextMatches > 0, {
      what: 'the Search panel to ask the overlay text search provider',
    });
    console.log(`# Search panel: ${d.api.testing.search.lastTextMatches} match(es) from the overlay text search provider`);
    await screenshot('search-panel');
  }
});

test('server: killed mid-session, it is restarted and editors keep working', async () => {
  const d = await demo();
  const doc = await vscode.workspace.openTextDocument(ov('/README.md'));
  const editor = await vscode.window.showTextDocument(doc, { preview: false });
  const pid = await waitFor(() => d.api.server.pid, { what: 'the server pid' });
  const restarts = d.api.server.restartCount;
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor(() => d.api.server.restartCount > restarts && d.api.server.state === 'running' && d.api.server.pid !== undefined && d.api.server.pid !== pid, {
    what: 'a restarted server',
    timeoutMs: 20_000,
  });
  console.log(`# server restarted ${Date.now() - t0} ms after SIGKILL`);
  await editor.edit((e) => e.insert(new vscode.Position(0, 0), '<!-- saved after a server restart -->\n'));
  assert.ok(await doc.save(), 'save after restart failed');
  assert.match(fs.readFileSync(path.join(d.upper, 'README.md'), 'utf8'), /saved after a server restart/);
  assert.match(await text(ov('/src/greet.js')), /Hello/);
  await vscode.commands.executeCommand('overlay.showLog');
  await screenshot('server-restarted');
});

test('server: a write cut off by a server crash fails visibly, and leaves no partial file', async () => {
  const d = await demo();
  await d.api.server.whenRunning(20_000);
  const pid = await waitFor(() => d.api.server.pid, { what: 'the server pid' });
  const data = Buffer.alloc(48 * 1024 * 1024, 0x61);
  const t0 = Date.now();
  const write = Promise.resolve(vscode.workspace.fs.writeFile(ov('/big.bin'), data)).then(
    () => 'written' as const,
    (err: unknown) => err,
  );
  // kill the server while the write is in flight
  await new Promise((r) => setTimeout(r, 150));
  process.kill(pid, 'SIGKILL');
  const outcome = await write;
  console.log(
    `# write of 48 MiB during a crash: ${outcome === 'written' ? 'finished before the kill' : `failed after ${Date.now() - t0} ms: ${String((outcome as Error).message).slice(0, 160)}`}`,
  );
  await waitFor(() => d.api.server.state === 'running' && d.api.server.pid !== undefined && d.api.server.pid !== pid, {
    what: 'a restarted server',
    timeoutMs: 20_000,
  });
  const upperCopy = path.join(d.upper, 'big.bin');
  if (outcome === 'written') {
    assert.equal(fs.statSync(upperCopy).size, data.length);
  } else {
    assert.ok(outcome instanceof vscode.FileSystemError, `not a FileSystemError: ${String(outcome)}`);
    // atomic: either absent or complete, never a partial upper file
    assert.ok(!fs.existsSync(upperCopy) || fs.statSync(upperCopy).size === data.length, 'a partial file was left in the upper layer');
  }
  await vscode.workspace.fs.delete(ov('/big.bin')).then(undefined, () => undefined);
}).timeout(60_000);
