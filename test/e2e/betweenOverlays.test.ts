/**
 * Copying and moving between two overlay:// folders. VS Code hands both to the overlay
 * provider (one provider serves every overlay), which copies through the extension, as VS
 * Code copies between two providers, and moves as a copy then a delete. Neither stack's
 * lower layers are written.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { test } from 'mocha';
import { skipBecause } from './harness';
import { dumpTree } from './fsdiff/layers';
import { OverlaySettings } from './fsdiff/sides';

const text = async (uri: vscode.Uri) => Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
const code = (e: unknown) => (e instanceof vscode.FileSystemError ? e.code : String(e));

test('between overlays: copy and rename from one overlay:// folder into another; no lower layer is written', async function () {
  if (process.getuid?.() !== 0) skipBecause(this, 'moving a lower entry away leaves a kernel whiteout (a character device: mknod), which needs root');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-between-'));
  const settings = new OverlaySettings();
  try {
    const stack = (name: string, files: Record<string, string>) => {
      const dirs = { lower: [path.join(base, name, 'L')], upper: path.join(base, name, 'U'), work: path.join(base, name, 'W') };
      for (const d of [...dirs.lower, dirs.upper, dirs.work]) fs.mkdirSync(d, { recursive: true });
      for (const [p, data] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dirs.lower[0], p)), { recursive: true });
        fs.writeFileSync(path.join(dirs.lower[0], p), data);
      }
      return dirs;
    };
    const a = stack('a', { 'a.txt': 'from a', 'd/x.txt': 'x in a', 'd/sub/y.txt': 'y in a' });
    const b = stack('b', { 'b.txt': 'from b' });
    const lowersBefore = [a, b].map((s) => [...dumpTree(s.lower[0], { times: true })]);
    const [A, B] = await settings.add([a, b], `between-${process.pid}`);
    const at = (root: vscode.Uri, p: string) => vscode.Uri.joinPath(root, ...p.split('/'));

    await vscode.workspace.fs.copy(at(A, 'a.txt'), at(B, 'copied.txt'));
    assert.equal(await text(at(B, 'copied.txt')), 'from a');
    await vscode.workspace.fs.copy(at(A, 'd'), at(B, 'd2'));
    assert.equal(await text(at(B, 'd2/sub/y.txt')), 'y in a');
    await assert.rejects(Promise.resolve(vscode.workspace.fs.copy(at(A, 'a.txt'), at(B, 'b.txt'))), (e) => code(e) === 'FileExists');
    await vscode.workspace.fs.copy(at(A, 'a.txt'), at(B, 'b.txt'), { overwrite: true });
    assert.equal(await text(at(B, 'b.txt')), 'from a');

    await vscode.workspace.fs.rename(at(A, 'd'), at(B, 'moved'));
    assert.equal(await text(at(B, 'moved/x.txt')), 'x in a');
    await assert.rejects(Promise.resolve(vscode.workspace.fs.stat(at(A, 'd'))), (e) => code(e) === 'FileNotFound');
    assert.ok(fs.lstatSync(path.join(a.upper, 'd')).isCharacterDevice(), 'the moved directory is whited out in the upper layer of a');
    assert.equal(await text(at(A, 'a.txt')), 'from a', 'the copied file stays');

    assert.deepEqual(
      [a, b].map((s) => [...dumpTree(s.lower[0], { times: true })]),
      lowersBefore,
      'a lower layer was written',
    );
  } finally {
    await settings.removeAll();
    fs.rmSync(base, { recursive: true, force: true });
  }
}).timeout(60_000);
