/** A stack whose upper belongs to a mounted kernel overlay: writes go through the merged directory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { skipBecause } from '../mocha/skip';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
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

  it('refuses writes with EROFS when the merged directory is not reachable', async function () {
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
    assert.equal((err as { data: P.OverlayErrorData }).data.code, 'EROFS');
    assert.match((err as { message: string }).message, /mounted kernel overlay/);
    assert.equal(fs.existsSync(path.join(st.upper, 'low.txt')), false, 'nothing written behind the kernel');
    assert.equal(Buffer.from(await readOverlayFile((q) => s!.conn.sendRequest(P.ReadFile.type, q), 'k', '/low.txt')).toString(), 'lower', 'reads still work');
  });
});
