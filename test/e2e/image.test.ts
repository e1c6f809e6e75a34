/**
 * Images in a real VS Code: Open Image… on a docker save archive (editable, a scratch upper in
 * the user's cache), a file edited and saved in an editor, Layers of This File (open a layer's
 * version read-only, compare two), Commit Changes as Image… loaded into Docker, and the
 * committed image runs with the edit (`docker run`). Skips, saying why, without a Docker daemon.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import { skipBecause, waitFor } from './harness';

const TAG = `overlayws-e2e-image-${process.pid}`;

function docker(args: string[], input?: Buffer): string {
  const r = spawnSync('docker', args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

test('images: open an image archive, edit a file, Layers of This File, commit, and the committed image runs', async function () {
  this.timeout(180_000);
  if (spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status !== 0)
    skipBecause(this, 'no Docker daemon answers (the oci tier starts one as root; run it first or start dockerd)');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-image-'));
  const images: string[] = [];
  let name: string | undefined;
  try {
    // A two-layer image: busybox and a greeting, then the greeting changed.
    const root = path.join(tmp, 'rootfs');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(root, 'app'));
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of ['sh', 'cat', 'ls']) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'app/greeting.txt'), 'hello\n');
    docker(['import', '-', `${TAG}-base:1`], spawnSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 1 << 28 }).stdout);
    images.push(`${TAG}-base:1`);
    fs.writeFileSync(path.join(tmp, 'Dockerfile'), `FROM ${TAG}-base:1\nRUN echo hello again > /app/greeting.txt\nCMD ["cat", "/app/greeting.txt"]\n`);
    const b = spawnSync('docker', ['build', '-q', '--network', 'none', '-t', `${TAG}:1`, tmp], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      encoding: 'utf8',
    });
    assert.equal(b.status, 0, b.stderr);
    images.push(`${TAG}:1`);
    docker(['save', '-o', path.join(tmp, 'image.tar'), `${TAG}:1`]);

    name = await vscode.commands.executeCommand<string | undefined>('overlay.openImage', {
      ref: path.join(tmp, 'image.tar'),
      scratch: true,
      name: 'e2e-image',
    });
    assert.equal(name, 'e2e-image');
    await waitFor(() => (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.toString() === 'overlay://e2e-image/'), { what: 'the image folder' });
    const uri = vscode.Uri.from({ scheme: 'overlay', authority: 'e2e-image', path: '/app/greeting.txt' });

    // Edit in an editor and save.
    const doc = await vscode.workspace.openTextDocument(uri);
    assert.equal(doc.getText(), 'hello again\n');
    const editor = await vscode.window.showTextDocument(doc);
    await editor.edit((e) => e.replace(new vscode.Range(0, 0, doc.lineCount, 0), 'edited in VS Code\n'));
    assert.ok(await doc.save(), 'saved');

    // Layers of This File: the upper copy and both image layers; open the bottom layer's version, compare two.
    const history = await vscode.commands.executeCommand<{ layer: string | number; kind: string }[]>('overlay.layersOfFile', uri, { open: 1 });
    assert.deepEqual(
      history.map((h) => `${h.layer} ${h.kind}`),
      ['upper file', '0 file', '1 file'],
    );
    await waitFor(() => (vscode.window.activeTextEditor?.document.uri.scheme === 'overlay-layer' ? vscode.window.activeTextEditor : undefined), {
      what: 'the layer version editor',
    });
    assert.equal(vscode.window.activeTextEditor?.document.getText(), 'hello\n', 'layer 1 (the bottom) has the first greeting');
    await vscode.commands.executeCommand('overlay.layersOfFile', uri, { compare: [0, 'upper'] });
    await waitFor(() => vscode.window.tabGroups.activeTabGroup.activeTab?.input instanceof vscode.TabInputTextDiff || undefined, { what: 'a diff editor' });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');

    // Commit Changes as Image…, loaded into Docker; the image runs with the edit.
    const r = await vscode.commands.executeCommand<{ id: string } | undefined>('overlay.commitImage', undefined, {
      name: 'e2e-image',
      tag: `${TAG}-committed:1`,
      load: true,
      message: 'e2e',
    });
    assert.ok(r, 'committed');
    images.push(`${TAG}-committed:1`);
    assert.match(r.id, /^sha256:/);
    assert.equal(
      docker(['run', '--rm', '--network', 'none', `${TAG}-committed:1`]),
      'edited in VS Code\n',
      'the committed image runs with the edit (its CMD kept)',
    );
  } finally {
    if (name) {
      const all = vscode.workspace.workspaceFolders ?? [];
      const i = all.findIndex((f) => f.uri.toString() === `overlay://${name}/`);
      if (i > 0) vscode.workspace.updateWorkspaceFolders(i, 1);
      const config = vscode.workspace.getConfiguration('overlay');
      const current = { ...(config.inspect<Record<string, unknown>>('overlays')?.workspaceValue ?? {}) };
      delete current[name];
      await config.update('overlays', current, vscode.ConfigurationTarget.Workspace);
    }
    for (const i of images.reverse()) spawnSync('docker', ['rmi', '-f', i], { stdio: 'ignore' });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
