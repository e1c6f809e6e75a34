/**
 * The watch policy (issue 17, server/src/watchPolicy.ts): what the server watches in each
 * layer, asserted on overlay/watching (what chokidar was given), never on timing; and how a
 * change is seen where nothing watches (the next listing).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, it } from 'mocha';
import { skipBecause } from '../mocha/skip';
import * as P from '../../shared/src/protocol';
import { makeStack, startServer, until, watchesDir, watching, watchReady, type Stack, type Started } from './harness';

const { Created } = P.FileChangeType;
/** lookupTuning.racyMs (server/src/overlay/tuning.ts), and a margin. */
const RACY_MS = 2000 + 200;

/**
 * Until every directory under `root` (and it) was last changed more than the racy window
 * ago: only then are listings of them cached (lookup.ts keeps none of a directory changed a
 * moment ago), and a stale listing could be served at all. (utimes cannot date the ctime back.)
 */
async function settled(root: string): Promise<void> {
  const dirs = [
    root,
    ...fs
      .readdirSync(root, { withFileTypes: true, recursive: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(e.parentPath, e.name)),
  ];
  const newest = Math.max(...dirs.map((d) => Math.max(fs.statSync(d).mtimeMs, fs.statSync(d).ctimeMs)));
  await until(() => Date.now() - newest > RACY_MS, RACY_MS + 5000, `the directories of ${root} older than ${RACY_MS} ms`);
}

/** Real directories watched in a layer, on their own or as recursive roots. */
const watchedIn = (layers: P.Watching.Layer[], layer: P.LayerRef): string[] => {
  const l = layers.find((x) => x.layer === layer);
  return l ? [...l.roots, ...l.dirs] : [];
};

describe('watch policy', () => {
  let st: Stack | undefined;
  let s: Started | undefined;
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    await s?.stop();
    s = undefined;
    while (cleanups.length > 0) (cleanups.pop() as () => void)();
    st?.cleanup();
    st = undefined;
  });

  const names = async (p: string): Promise<string[]> => (await s!.conn.sendRequest(P.ReadDirectory.type, { name: 'w', path: p })).map(([n]) => n).sort();

  it('auto: a lower directory nobody watches is not watched, and a change in it shows at its next listing', async function () {
    this.timeout(20_000); // the directories must first be older than the racy window
    st = makeStack([{ 'top.txt': 't', 'far/a.txt': 'a', 'far/deeper/b.txt': 'b' }], { 'up.txt': 'u' });
    await settled(st.lower[0]);
    s = await startServer({ w: st.spec });
    await watchReady(s);
    // VS Code watches the root; the explorer lists it (and the extension follows it); the read-ahead brings /far and /far/deeper too (cached, not looked at).
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/', recursive: true });
    const ahead = await s.conn.sendRequest(P.ReadDirectories.type, { name: 'w', path: '/', budget: 1000 });
    assert.deepEqual(
      ahead.map((l) => l.path),
      ['/', '/far', '/far/deeper'],
    );
    await watchesDir(s, 'w', st.lower[0]);
    const layers = await watching(s, 'w');
    assert.equal(layers.find((l) => l.layer === 0)?.mode, 'followed');
    assert.deepEqual(watchedIn(layers, 0), [st.lower[0]], 'only the root is watched in the lower');
    // Another process changes the lower where nothing watches.
    fs.writeFileSync(path.join(st.lower[0], 'far/deeper/late.txt'), 'late');
    fs.rmSync(path.join(st.lower[0], 'far/a.txt'));
    assert.deepEqual(await names('/far/deeper'), ['b.txt', 'late.txt']);
    assert.deepEqual(await names('/far'), ['deeper']);
    assert.equal((await s.conn.sendRequest(P.Stat.type, { name: 'w', path: '/far/deeper/late.txt' })).size, 4);
  });

  it('auto: a directory VS Code asks to watch is followed in each lower layer; its changes are evented; unwatch lets go', async () => {
    st = makeStack([{ 'd/x.txt': 'x' }, { 'd/y.txt': 'y', 'e/z.txt': 'z' }]);
    s = await startServer({ w: st.spec });
    await watchReady(s);
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 7, path: '/d', recursive: false });
    for (const l of st.lower) await watchesDir(s, 'w', path.join(l, 'd'));
    const layers = await watching(s, 'w');
    assert.ok(!watchedIn(layers, 1).includes(path.join(st.lower[1], 'e')), '/e is not watched');
    fs.writeFileSync(path.join(st.lower[1], 'd/new.txt'), 'new');
    await until(() => s!.changes.some((c) => c.path === '/d/new.txt' && c.type === Created), 5000, 'Created /d/new.txt');
    await s.conn.sendRequest(P.Unwatch.type, { name: 'w', id: 7 });
    await until(async () => !watchedIn(await watching(s!, 'w'), 0).includes(path.join(st!.lower[0], 'd')), 5000, 'the watch on /d let go');
    // An unknown id is no error (the watch may have gone with a restart).
    await s.conn.sendRequest(P.Unwatch.type, { name: 'w', id: 12345 });
  });

  it('a directory watched that is not in a layer (yet) is watched from its nearest ancestor there, then itself once made', async () => {
    st = makeStack([{ 'top.txt': 't' }], { 'd/in.txt': 'upper only' });
    s = await startServer({ w: st.spec });
    await watchReady(s);
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/d', recursive: false });
    await watchesDir(s, 'w', st.lower[0]);
    fs.mkdirSync(path.join(st.lower[0], 'd'));
    await watchesDir(s, 'w', path.join(st.lower[0], 'd'));
    fs.writeFileSync(path.join(st.lower[0], 'd/low.txt'), 'l');
    await until(() => s!.changes.some((c) => c.path === '/d/low.txt' && c.type === Created), 5000, 'Created /d/low.txt');
  });

  it('auto: layers that cannot change are never watched (a Docker overlay2 layer, a layer of the image layer cache)', async () => {
    st = makeStack([{}]);
    const docker = path.join(st.root, 'docker/overlay2/0123abcd');
    fs.mkdirSync(path.join(docker, 'diff/d'), { recursive: true });
    fs.writeFileSync(path.join(docker, 'link'), 'SHORTID');
    fs.writeFileSync(path.join(docker, 'diff/d/from-docker.txt'), 'docker');
    const cache = path.join(st.root, 'xdg-cache');
    const cached = path.join(cache, 'overlayws/layers/sha256/' + 'ab'.repeat(32));
    fs.mkdirSync(path.join(cached, 'd'), { recursive: true });
    fs.writeFileSync(path.join(cached, 'd/from-image.txt'), 'image');
    fs.mkdirSync(path.join(st.lower[0], 'd'));
    const spec = { lower: [path.join(docker, 'diff'), cached, st.lower[0]], upper: st.upper, work: st.work };
    s = await startServer({ w: spec }, '--stdio', { env: { XDG_CACHE_HOME: cache } });
    await watchReady(s);
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/', recursive: true });
    assert.deepEqual(await names('/d'), ['from-docker.txt', 'from-image.txt']);
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 2, path: '/d', recursive: false });
    await watchesDir(s, 'w', path.join(st.lower[0], 'd'));
    const layers = await watching(s, 'w');
    assert.deepEqual(
      layers.map((l) => [l.layer, l.mode]),
      [
        ['upper', 'whole'],
        [0, 'none'],
        [1, 'none'],
        [2, 'followed'],
      ],
    );
    assert.match(layers[1].reason, /Docker overlay2 layer/);
    assert.match(layers[2].reason, /image layer cache/);
    assert.deepEqual(watchedIn(layers, 0), []);
    assert.deepEqual(watchedIn(layers, 1), []);
  });

  it('auto: the lowers of a mounted overlay are not watched while it is mounted', async function () {
    st = makeStack([{ 'd/x.txt': 'x' }]);
    const merged = path.join(st.root, 'merged');
    fs.mkdirSync(merged);
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${st.lower[0]},upperdir=${st.upper},workdir=${st.work}`, merged], {
      encoding: 'utf8',
    });
    if (r.status !== 0) skipBecause(this, `mount -t overlay is not permitted here: ${(r.stderr || r.error?.message || '').trim()}`);
    cleanups.push(() => spawnSync('umount', [merged]));
    s = await startServer({ w: st.spec });
    await watchReady(s);
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/', recursive: true });
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 2, path: '/d', recursive: false });
    const layers = await watching(s, 'w');
    const lower = layers.find((l) => l.layer === 0);
    assert.equal(lower?.mode, 'none');
    assert.match(lower?.reason ?? '', new RegExp(`mounted at ${merged}`));
    assert.deepEqual(watchedIn(layers, 0), []);
  });

  it('overlay.watchLowerLayers: "always" watches every lower whole, "never" none, "auto" follows; overlay/configure switches at once', async () => {
    st = makeStack([{ 'd/x.txt': 'x', 'e/f/y.txt': 'y' }], { 'up.txt': 'u' });
    s = await startServer({ w: st.spec }, '--stdio', { watchLowerLayers: 'always' });
    await watchReady(s);
    let layers = await watching(s, 'w');
    assert.deepEqual(
      layers.map((l) => [l.layer, l.mode]),
      [
        ['upper', 'whole'],
        [0, 'whole'],
      ],
    );
    assert.deepEqual(watchedIn(layers, 0), [st.lower[0]]);
    // Watched whole: a change deep down that nobody listed is evented.
    fs.writeFileSync(path.join(st.lower[0], 'e/f/new.txt'), 'n');
    await until(() => s!.changes.some((c) => c.path === '/e/f/new.txt' && c.type === Created), 5000, 'Created /e/f/new.txt');

    await s.conn.sendRequest(P.Configure.type, { watchLowerLayers: 'never' });
    layers = await watching(s, 'w');
    assert.equal(layers.find((l) => l.layer === 0)?.mode, 'none');
    assert.equal(layers.find((l) => l.layer === 'upper')?.mode, 'whole', 'the upper is watched as in auto');
    await s.conn.sendRequest(P.Watch.type, { name: 'w', id: 1, path: '/d', recursive: false });
    assert.deepEqual(watchedIn(await watching(s, 'w'), 0), [], '"never": not even what VS Code watches');

    await s.conn.sendRequest(P.Configure.type, { watchLowerLayers: 'auto' });
    await watchesDir(s, 'w', path.join(st.lower[0], 'd'));
    layers = await watching(s, 'w');
    assert.equal(layers.find((l) => l.layer === 0)?.mode, 'followed');
    assert.deepEqual(watchedIn(layers, 0), [path.join(st.lower[0], 'd')]);

    // A value that is not one of the three is refused, and changes nothing.
    await assert.rejects(s.conn.sendRequest(P.Configure.type, { watchLowerLayers: 'sometimes' as P.WatchLowerLayers }));
    assert.equal((await watching(s, 'w')).find((l) => l.layer === 0)?.mode, 'followed');
  });
});
