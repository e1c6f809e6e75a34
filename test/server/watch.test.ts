/** Watch events of the merged view and copy-up notifications, for writes by the server and by outside processes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { b64, copyUpSeen, makeStack, startServer, until, watchesDir, watchReady, type Stack, type Started } from './harness';

const { Changed, Created, Deleted } = P.FileChangeType;

describe('server watching', () => {
  let st: Stack;
  let s: Started;
  const eventsFor = (p: string) => s.changes.filter((c) => c.path === p).map((c) => c.type);
  const waitEvent = (p: string, type: P.FileChangeType, what = `${type} on ${p}`) => until(() => eventsFor(p).includes(type), 5000, what);

  beforeEach(async () => {
    st = makeStack([{ 'low.txt': 'lower', 'other.txt': 'other', 'hidden.txt': 'below', 'dir/in.txt': 'in' }], { 'hidden.txt': 'upper copy', 'up.txt': 'u' });
    s = await startServer({ w: st.spec });
    await watchReady(s);
  });
  afterEach(async () => {
    await s.stop();
    st.cleanup();
  });

  it('server writes: Created, Changed with new stat, Deleted', async () => {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'w', path: '/made.txt', data: b64('12345'), create: true, overwrite: false });
    await waitEvent('/made.txt', Created);
    await s.conn.sendRequest(P.WriteFile.type, { name: 'w', path: '/up.txt', data: b64('longer content'), create: false, overwrite: true });
    await waitEvent('/up.txt', Changed);
    const ch = s.changes.find((c) => c.path === '/up.txt' && c.type === Changed);
    assert.equal(ch?.stat?.size, 14);
    assert.equal(ch?.stat?.mtime, fs.statSync(path.join(st.upper, 'up.txt')).mtimeMs);
    assert.equal(ch?.name, 'w');
    await s.conn.sendRequest(P.Delete.type, { name: 'w', path: '/made.txt', recursive: false });
    await waitEvent('/made.txt', Deleted);
  });

  it('a server copy-up: didCopyUp by server once, and Changed (not Created)', async () => {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'w', path: '/low.txt', data: b64('edited'), create: false, overwrite: true });
    await until(() => s.copyUps.length > 0, 5000, 'didCopyUp');
    assert.deepEqual(copyUpSeen(s.copyUps[0]), {
      name: 'w',
      path: '/low.txt',
      lowerPath: path.join(st.lower[0], 'low.txt'),
      upperPath: path.join(st.upper, 'low.txt'),
      by: 'server',
      holders: [],
    });
    await waitEvent('/low.txt', Changed);
    assert.ok(!eventsFor('/low.txt').includes(Created), 'an upper copy of a lower file is Changed, not Created');
    // Give the watcher a chance to report a duplicate: a later, unrelated event flushes after it.
    fs.writeFileSync(path.join(st.upper, 'marker'), 'm');
    await waitEvent('/marker', Created);
    assert.equal(s.copyUps.length, 1, 'no second notification from the watcher');
  });

  it('an outside copy-up (another process writes the upper): didCopyUp by outside', async () => {
    // Like the CLI or a kernel copy-up: the copy is made elsewhere and renamed into upper.
    const tmp = path.join(st.work, 'tmpcopy');
    fs.writeFileSync(tmp, 'changed outside');
    const r = spawnSync('mv', [tmp, path.join(st.upper, 'low.txt')]);
    assert.equal(r.status, 0);
    await until(() => s.copyUps.length > 0, 5000, 'didCopyUp');
    assert.deepEqual(copyUpSeen(s.copyUps[0]), {
      name: 'w',
      path: '/low.txt',
      lowerPath: path.join(st.lower[0], 'low.txt'),
      upperPath: path.join(st.upper, 'low.txt'),
      by: 'outside',
      holders: [],
    });
    await waitEvent('/low.txt', Changed);
    const ch = s.changes.find((c) => c.path === '/low.txt' && c.type === Changed);
    assert.equal(ch?.stat?.size, 15);
    assert.equal(ch?.stat?.layer, 'upper');
    assert.ok(!eventsFor('/low.txt').includes(Created));
  });

  it('outside process: created, changed, a whiteout is Deleted, removing an upper copy is Changed', async () => {
    const r = spawnSync('sh', ['-c', `echo new > '${st.upper}/out.txt'`]);
    assert.equal(r.status, 0);
    await waitEvent('/out.txt', Created);
    fs.appendFileSync(path.join(st.upper, 'up.txt'), 'more');
    await waitEvent('/up.txt', Changed);
    // A kernel-format whiteout over a lower file: Deleted.
    const mk = spawnSync('mknod', [path.join(st.upper, 'other.txt'), 'c', '0', '0']);
    assert.equal(mk.status, 0, String(mk.stderr));
    await waitEvent('/other.txt', Deleted);
    // Removing the upper copy uncovers the lower file: Changed, stat from the lower layer.
    fs.unlinkSync(path.join(st.upper, 'hidden.txt'));
    await waitEvent('/hidden.txt', Changed);
    const ch = s.changes.filter((c) => c.path === '/hidden.txt' && c.type === Changed).pop();
    assert.equal(ch?.stat?.layer, 0);
    assert.equal(ch?.stat?.size, 5);
    assert.ok(!eventsFor('/hidden.txt').includes(Deleted));
  });

  /** As VS Code and the extension do: a recursive watch of the folder's root, and (/dir listed in the explorer) a watch of /dir: the lower's two directories are followed. */
  const lookAtDir = async (): Promise<void> => {
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/', recursive: true });
    await s.conn.sendRequest(P.ReadDirectory.type, { name: 'w', path: '/dir' });
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 2, path: '/dir', recursive: false });
    await watchesDir(s, 'w', st.lower[0]);
    await watchesDir(s, 'w', path.join(st.lower[0], 'dir'));
  };

  it('a change to a lower file that the upper hides is no event', async () => {
    await lookAtDir();
    fs.writeFileSync(path.join(st.lower[0], 'hidden.txt'), 'lower changed behind the upper');
    fs.writeFileSync(path.join(st.lower[0], 'dir', 'in.txt'), 'visible lower change');
    await waitEvent('/dir/in.txt', Changed);
    assert.deepEqual(eventsFor('/hidden.txt'), []);
  });

  it('a server read before an outside copy-up: the stale lower copy is named', async () => {
    const w = await s.conn.sendRequest(P.ReadFile.type, { name: 'w', path: '/dir/in.txt' });
    assert.equal(w.layer, 0);
    fs.mkdirSync(path.join(st.upper, 'dir'));
    fs.writeFileSync(path.join(st.upper, 'dir', 'in.txt'), 'copied');
    await until(() => s.copyUps.some((c) => c.path === '/dir/in.txt'), 5000, 'didCopyUp');
    const c = s.copyUps.find((x) => x.path === '/dir/in.txt');
    assert.equal(c?.by, 'outside');
    assert.equal(c?.lowerPath, w.realPath);
  });

  it('a lower layer changed on disk after lookups cached it: events, and reads see the change', async () => {
    await assert.rejects(s.conn.sendRequest(P.Stat.type, { name: 'w', path: '/dir/late.txt' })); // a cached miss
    assert.deepEqual(
      (await s.conn.sendRequest(P.ReadDirectory.type, { name: 'w', path: '/dir' })).map(([n]) => n),
      ['in.txt'],
    );
    await lookAtDir();
    fs.writeFileSync(path.join(st.lower[0], 'dir/late.txt'), 'added to the image layer');
    await waitEvent('/dir/late.txt', Created);
    assert.equal((await s.conn.sendRequest(P.Stat.type, { name: 'w', path: '/dir/late.txt' })).size, 24);
    assert.deepEqual((await s.conn.sendRequest(P.ReadDirectory.type, { name: 'w', path: '/dir' })).map(([n]) => n).sort(), ['in.txt', 'late.txt']);
    fs.rmSync(path.join(st.lower[0], 'dir/late.txt'));
    await waitEvent('/dir/late.txt', Deleted);
    await assert.rejects(s.conn.sendRequest(P.Stat.type, { name: 'w', path: '/dir/late.txt' }));
  });
});
