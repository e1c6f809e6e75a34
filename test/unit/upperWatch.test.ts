/**
 * How the upper is watched (server/src/watchPolicy.ts): whole while it is small, followed
 * like a lower once it is big — at the start, or when it grows past the bound while watched.
 * Asserted on what the watcher watches (state()), with the bounds of watchTuning lowered.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { OverlayWatcher } from '../../server/src/watcher';
import { watchTuning } from '../../server/src/watchPolicy';
import { FileChangeType } from '../../shared/src/protocol';

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('watching the upper', () => {
  const saved = { ...watchTuning };
  let root: string;
  let ov: Overlay | undefined;
  let w: OverlayWatcher | undefined;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-upperwatch-'));
    for (const d of ['lower', 'upper', 'work']) fs.mkdirSync(path.join(root, d));
    fs.writeFileSync(path.join(root, 'lower/l.txt'), 'l');
    watchTuning.upperWholeDirs = 5;
  });
  afterEach(async () => {
    await w?.close();
    await ov?.close();
    w = ov = undefined;
    Object.assign(watchTuning, saved);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const start = async (): Promise<{ changes: { path: string; type: number }[] }> => {
    ov = await Overlay.open({ lower: [path.join(root, 'lower')], upper: path.join(root, 'upper'), work: path.join(root, 'work') });
    w = new OverlayWatcher(ov, () => undefined, { batchMs: 10 });
    const changes: { path: string; type: number }[] = [];
    w.on('changes', (c) => changes.push(...c));
    await w.start();
    return { changes };
  };
  const upper = () => w?.state().find((l) => l.layer === 'upper');

  it('a small upper is watched whole: a change deep in it that nobody looks at is evented', async () => {
    fs.mkdirSync(path.join(root, 'upper/a/b'), { recursive: true });
    const { changes } = await start();
    assert.equal(upper()?.mode, 'whole');
    assert.deepEqual(upper()?.roots, [path.join(root, 'upper')]);
    fs.writeFileSync(path.join(root, 'upper/a/b/new.txt'), 'n');
    await until(() => changes.some((c) => c.path === '/a/b/new.txt' && c.type === FileChangeType.Created), 'Created /a/b/new.txt');
  });

  it('an upper of more directories than the bound is followed: only the directories asked for are watched', async () => {
    for (let i = 0; i < 8; i++) fs.mkdirSync(path.join(root, `upper/d${i}`));
    const { changes } = await start();
    assert.equal(upper()?.mode, 'followed');
    assert.match(upper()?.reason ?? '', /more than/);
    assert.deepEqual(upper()?.roots, []);
    await w!.watch(1, '/d3', false);
    assert.deepEqual(upper()?.dirs, [path.join(root, 'upper/d3')]);
    fs.writeFileSync(path.join(root, 'upper/d3/x.txt'), 'x');
    await until(() => changes.some((c) => c.path === '/d3/x.txt' && c.type === FileChangeType.Created), 'Created /d3/x.txt');
    // A server write where nothing watches is still evented (the server looks at what it wrote).
    w!.noteBeforeWrite('/d5/by-server.txt'); // as the registry does before each write
    fs.writeFileSync(path.join(root, 'upper/d5/by-server.txt'), 's');
    w!.touched('/d5/by-server.txt');
    await until(() => changes.some((c) => c.path === '/d5/by-server.txt' && c.type === FileChangeType.Created), 'Created /d5/by-server.txt');
  });

  it('an upper that grows past the bound while watched whole is followed from then on', async () => {
    await start();
    assert.equal(upper()?.mode, 'whole');
    for (let i = 0; i < 8; i++) fs.mkdirSync(path.join(root, `upper/g${i}`));
    await until(() => upper()?.mode === 'followed', 'the upper followed');
    assert.match(upper()?.reason ?? '', /grew past/);
    assert.deepEqual(upper()?.roots, []);
  });
});
