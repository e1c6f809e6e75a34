/**
 * Stale readers beyond the editor (client/src/staleReaders.ts), in a real VS Code with a real
 * Docker container: a process in the container keeps /app/greeting.txt open; the container's
 * layers are opened as the lowers of an overlay with a fresh upper (the copy-up then happens
 * in our upper, and the container's process goes on reading the lower copy — through the
 * container's own mount it would see the kernel's copy-up on its next read(2)); the file is
 * saved from an editor; the notification names the process and the container, and leaves out
 * the extension host, which holds the file too (VS Code's own process). Its actions
 * act on them: SIGHUP ends the `sleep` (it does not handle SIGHUP, and the container's shell
 * waited for it), Restart Container starts the container again.
 *
 * Docker: the daemon that answers, or — as root — one started here and stopped at the end
 * (test/mocha/docker.ts); otherwise the test is skipped and says why.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import { busyboxImage, childrenOf, dockerDaemon, runContainer, type Container } from '../mocha/docker';
import { overlayApi, screenshot, skipBecause, waitFor } from './harness';

const api = overlayApi;

/** Removes the workspace folder and the `overlay.overlays` entry of `name`. */
async function forgetOverlay(name: string): Promise<void> {
  const all = vscode.workspace.workspaceFolders ?? [];
  const i = all.findIndex((f) => f.uri.toString() === `overlay://${name}/`);
  if (i > 0) {
    const removed = new Promise<void>((resolve) => {
      const sub = vscode.workspace.onDidChangeWorkspaceFolders(() => {
        sub.dispose();
        resolve();
      });
    });
    if (vscode.workspace.updateWorkspaceFolders(i, 1)) await Promise.race([removed, new Promise((r) => setTimeout(r, 10_000))]);
  }
  const config = vscode.workspace.getConfiguration('overlay');
  const current = { ...(config.inspect<Record<string, unknown>>('overlays')?.workspaceValue ?? {}) };
  delete current[name];
  await config.update('overlays', current, vscode.ConfigurationTarget.Workspace);
}

test('stale readers: saving a file of an overlay over a container’s layers names the container’s process that still reads the old copy; Send SIGHUP and Restart Container act on it', async function () {
  this.timeout(300_000);
  const docker = await dockerDaemon();
  if (typeof docker === 'string') skipBecause(this, docker);
  const a = await api();
  const tag = `overlayws-e2e-readers:${process.pid}`;
  const name = `readers-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-readers-'));
  let removeImage: (() => void) | undefined;
  let ctr: Container | undefined;
  let opened = false;
  let ownFd: number | undefined;
  const autoConfirm = a.testing.autoConfirm;
  try {
    removeImage = busyboxImage(tag, { 'app/greeting.txt': 'hello from the image\n' });
    ctr = runContainer(`overlayws-e2e-reader-${process.pid}`, tag, ['sh', '-c', 'sleep 100000 3</app/greeting.txt & wait']);
    const c = ctr;
    const init = await waitFor(() => c.inspect().State.Pid, { what: 'the container runs' });
    const pid = await waitFor(() => childrenOf(init)[0], { what: 'the sleep inside the container' });
    const data = c.inspect().GraphDriver.Data;
    for (const d of ['upper', 'work']) fs.mkdirSync(path.join(tmp, d));

    const opening = await vscode.commands.executeCommand<string | undefined>('overlay.openFolders', {
      lower: [data.UpperDir, ...data.LowerDir.split(':')],
      upper: path.join(tmp, 'upper'),
      work: path.join(tmp, 'work'),
      name,
    });
    assert.equal(opening, name);
    opened = true;
    await waitFor(() => a.overlays().find((o) => o.name === name), { what: `overlay ${name} open`, timeoutMs: 30_000 });

    // This extension host (VS Code's own process) holds the lower file too: left out of the notification.
    const lowerFile = [data.UpperDir, ...data.LowerDir.split(':')].map((l) => path.join(l, 'app/greeting.txt')).find((f) => fs.existsSync(f));
    assert.ok(lowerFile, 'the image layer holds /app/greeting.txt');
    ownFd = fs.openSync(lowerFile, 'r');

    // Saved from an editor: the first save copies the file up.
    const uri = vscode.Uri.from({ scheme: 'overlay', authority: name, path: '/app/greeting.txt' });
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(uri, new vscode.Position(0, 0), 'edited in VS Code: ');
    assert.ok(await vscode.workspace.applyEdit(edit));
    assert.ok(await doc.save(), 'saved');
    assert.equal(fs.readFileSync(path.join(tmp, 'upper/app/greeting.txt'), 'utf8'), 'edited in VS Code: hello from the image\n');

    const notice = await waitFor(() => a.testing.staleReaders.entries.find((n) => n.overlay === name && n.path === '/app/greeting.txt'), {
      what: 'the stale-reader notice',
      timeoutMs: 20_000,
    });
    assert.equal(notice.message, `sleep (pid ${pid}, container ${c.name}) still reads the old copy of /app/greeting.txt`);
    assert.deepEqual(
      notice.holders.map((h) => [h.pid, h.how, h.container]),
      [[pid, 'open', c.name]],
    );
    assert.ok(notice.own.includes(process.pid), `the extension host holds it too, and is VS Code's own: ${JSON.stringify(notice.own)}`);
    console.log(`# notified: ${notice.message}`);
    await vscode.commands.executeCommand('notifications.showList');
    await screenshot('stale-readers');
    await vscode.commands.executeCommand('notifications.hideList');

    // The notification's actions (its buttons call the same function).
    a.testing.autoConfirm = true;
    const before = c.inspect().State.StartedAt;
    const hup = await a.staleReaders.act(notice, 'sighup');
    assert.deepEqual(hup?.results, { [pid]: 'sent' });
    await waitFor(() => !c.inspect().State.Running, { what: 'the container stops once its sleep ended on SIGHUP', timeoutMs: 20_000 });
    const again = await a.staleReaders.act(notice, 'sighup');
    assert.deepEqual(again?.results, { [pid]: 'gone' }, 'a process that ended is not signalled again');
    const restart = await a.staleReaders.act(notice, 'restart');
    assert.deepEqual(restart?.results, { [c.name]: '' });
    await waitFor(() => c.inspect().State.Running && c.inspect().State.StartedAt !== before, { what: 'the container running again', timeoutMs: 60_000 });
  } finally {
    if (ownFd !== undefined) fs.closeSync(ownFd);
    a.testing.autoConfirm = autoConfirm;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    if (opened) await forgetOverlay(name);
    ctr?.remove();
    removeImage?.();
    fs.rmSync(tmp, { recursive: true, force: true });
    if (typeof docker !== 'string') await docker.stop();
  }
});
