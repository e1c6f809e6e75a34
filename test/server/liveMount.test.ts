/** A stack whose upper belongs to a mounted kernel overlay: writes go through the merged directory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { skipBecause } from '../mocha/skip';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { Overlay } from '../../server/src/overlay';
import { b64, copyUpSeen, errorCode, makeStack, startServer, until, watchReady, type Stack, type Started } from './harness';

function tryMount(st: Stack, merged: string): string | undefined {
  fs.mkdirSync(merged);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${st.lower.join(':')},upperdir=${st.upper},workdir=${st.work}`, merged], {
    encoding: 'utf8',
  });
  if (r.status !== 0) return `mount -t overlay is not permitted here: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}

describe('server with a live kernel mount', () => {
  let st: Stack;
  let s: Started | undefined;
  let merged: string;
  let skip: string | undefined;
  const mounted: string[] = [];

  beforeEach(() => {
    st = makeStack([{ 'low.txt': 'lower', 'keep.txt': 'keep', 'dir/in.txt': 'in' }]);
    merged = path.join(st.root, 'merged');
    skip = tryMount(st, merged);
    if (!skip) mounted.push(merged);
  });
  afterEach(async () => {
    await s?.stop();
    s = undefined;
    while (mounted.length > 0) spawnSync('umount', [mounted.pop() as string]);
    st.cleanup();
  });

  it('routes writes through merged; the kernel copies up; notifications say who', async function () {
    if (skip) skipBecause(this, skip);
    s = await startServer({ k: st.spec });
    await watchReady(s);
    const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
    assert.deepEqual(info.liveMount, { merged, reachable: true });
    // A write by the server: through merged, so the kernel does the copy-up.
    await s.conn.sendRequest(P.WriteFile.type, { name: 'k', path: '/low.txt', data: b64('via kernel'), create: false, overwrite: true });
    assert.equal(fs.readFileSync(path.join(merged, 'low.txt'), 'utf8'), 'via kernel');
    assert.equal(fs.readFileSync(path.join(st.upper, 'low.txt'), 'utf8'), 'via kernel');
    assert.equal(fs.readFileSync(path.join(st.lower[0], 'low.txt'), 'utf8'), 'lower');
    await until(() => s!.copyUps.some((c) => c.path === '/low.txt'), 5000, 'didCopyUp for the server write');
    assert.deepEqual(copyUpSeen(s.copyUps.find((c) => c.path === '/low.txt')), {
      name: 'k',
      path: '/low.txt',
      lowerPath: path.join(st.lower[0], 'low.txt'),
      upperPath: path.join(st.upper, 'low.txt'),
      by: 'server',
      holders: [],
    });
    const read = await readOverlayFile((q) => s!.conn.sendRequest(P.ReadFile.type, q), 'k', '/low.txt');
    assert.equal(Buffer.from(read).toString(), 'via kernel');
    // A container process writing through the mount: outside.
    const r = spawnSync('sh', ['-c', `echo more >> '${merged}/dir/in.txt'`]);
    assert.equal(r.status, 0);
    await until(() => s!.copyUps.some((c) => c.path === '/dir/in.txt'), 5000, 'didCopyUp for the outside write');
    assert.equal(s.copyUps.find((c) => c.path === '/dir/in.txt')?.by, 'outside');
    await until(() => s!.changes.some((c) => c.path === '/dir/in.txt' && c.type === P.FileChangeType.Changed), 5000, 'Changed');
    // Deletes and renames also go through the kernel (its whiteouts).
    await s.conn.sendRequest(P.Delete.type, { name: 'k', path: '/keep.txt', recursive: false });
    assert.equal(fs.existsSync(path.join(merged, 'keep.txt')), false);
    await until(() => s!.changes.some((c) => c.path === '/keep.txt' && c.type === P.FileChangeType.Deleted), 5000, 'Deleted');
    await s.conn.sendRequest(P.Rename.type, { name: 'k', from: '/dir', to: '/moved', overwrite: false });
    assert.equal(fs.readFileSync(path.join(merged, 'moved', 'in.txt'), 'utf8'), 'inmore\n');
    assert.deepEqual((await s.conn.sendRequest(P.ReadDirectory.type, { name: 'k', path: '/' })).map(([n]) => n).sort(), fs.readdirSync(merged).sort());
    assert.equal(await errorCode(s.conn.sendRequest(P.WriteFile.type, { name: 'k', path: '/low.txt', data: '', create: true, overwrite: false })), 'EEXIST');
  });

  it('refuses writes with EBUSY when the merged directory is not reachable', async function () {
    if (skip) skipBecause(this, skip);
    const cover = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', merged]);
    if (cover.status !== 0) skipBecause(this, 'cannot mount tmpfs over the merged directory');
    mounted.push(merged);
    s = await startServer({ k: st.spec });
    const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
    assert.deepEqual(info.liveMount, { merged, reachable: false });
    const err = await s.conn
      .sendRequest(P.WriteFile.type, { name: 'k', path: '/low.txt', data: b64('x'), create: true, overwrite: true })
      .catch((e: { message: string; data: P.OverlayErrorData }) => e);
    assert.equal((err as { data: P.OverlayErrorData }).data.code, 'EBUSY');
    assert.match((err as { message: string }).message, /belongs to the overlay mounted at .*not reachable from here/);
    assert.equal(fs.existsSync(path.join(st.upper, 'low.txt')), false, 'nothing written behind the kernel');
    assert.equal(Buffer.from(await readOverlayFile((q) => s!.conn.sendRequest(P.ReadFile.type, q), 'k', '/low.txt')).toString(), 'lower', 'reads still work');
  });

  it('a rename through the mount answers as the engine does: ENOTEMPTY, EISDIR, ENOTDIR, EEXIST — and nothing is removed', async function () {
    if (skip) skipBecause(this, skip);
    fs.mkdirSync(path.join(merged, 'full'));
    fs.writeFileSync(path.join(merged, 'full/x'), 'x');
    fs.mkdirSync(path.join(merged, 'empty'));
    s = await startServer({ k: st.spec });
    const mv = (from: string, to: string, overwrite = true) => errorCode(s!.conn.sendRequest(P.Rename.type, { name: 'k', from, to, overwrite }));
    assert.equal(await mv('/dir', '/full'), 'ENOTEMPTY', 'a directory onto a non-empty one');
    assert.equal(fs.readFileSync(path.join(merged, 'full/x'), 'utf8'), 'x', 'the target is still there');
    assert.equal(await mv('/low.txt', '/empty'), 'EISDIR', 'a file onto a directory');
    assert.equal(await mv('/dir', '/keep.txt'), 'ENOTDIR', 'a directory onto a file');
    assert.equal(await mv('/low.txt', '/keep.txt', false), 'EEXIST');
    assert.equal(await mv('/dir/in.txt', '/dir'), 'ENOTEMPTY', 'onto a directory that holds the source');
    assert.equal(fs.readFileSync(path.join(merged, 'dir/in.txt'), 'utf8'), 'in');
    // The engine on a copy of the same stack answers the same.

    const copy = makeStack([{ 'low.txt': 'lower', 'keep.txt': 'keep', 'dir/in.txt': 'in' }], { 'full/x': 'x', empty: null });
    const ov = await Overlay.open(copy.spec);
    try {
      const engine = async (from: string, to: string, overwrite = true) =>
        ov.rename(from, to, { overwrite }).then(
          () => 'ok',
          (e: { code: string }) => e.code,
        );
      assert.deepEqual(
        [
          await engine('/dir', '/full'),
          await engine('/low.txt', '/empty'),
          await engine('/dir', '/keep.txt'),
          await engine('/low.txt', '/keep.txt', false),
          await engine('/dir/in.txt', '/dir'),
        ],
        ['ENOTEMPTY', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOTEMPTY'],
      );
    } finally {
      await ov.close();
      copy.cleanup();
    }
    // A directory with lower parts onto an empty directory: EXDEV, then moved as mv does.
    await s.conn.sendRequest(P.Rename.type, { name: 'k', from: '/dir', to: '/empty', overwrite: true });
    assert.equal(fs.readFileSync(path.join(merged, 'empty/in.txt'), 'utf8'), 'in');
    assert.equal(fs.existsSync(path.join(merged, 'dir')), false);
  });

  it("revert under another's mount: EBUSY, or with throughMount the lower copy written back through the mount", async function () {
    if (skip) skipBecause(this, skip);
    fs.writeFileSync(path.join(merged, 'low.txt'), 'changed by the container\n');
    fs.rmSync(path.join(merged, 'keep.txt'));
    s = await startServer({ k: st.spec });
    assert.equal(await errorCode(s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/low.txt' })), 'EBUSY');
    await s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/low.txt', throughMount: true });
    await s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/keep.txt', throughMount: true });
    assert.equal(fs.readFileSync(path.join(merged, 'low.txt'), 'utf8'), 'lower');
    assert.equal(fs.readFileSync(path.join(merged, 'keep.txt'), 'utf8'), 'keep');
    assert.equal(fs.readFileSync(path.join(st.upper, 'low.txt'), 'utf8'), 'lower', 'written by the kernel into its upper');
    assert.equal(fs.readFileSync(path.join(st.lower[0], 'low.txt'), 'utf8'), 'lower');
  });
});
