/** Every overlay/ request over a real connection to the built server, and its error mapping. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { b64, errorCode, makeStack, startServer, type Stack, type Started } from './harness';

describe('server requests', () => {
  let st: Stack;
  let s: Started;
  const req = <R>(method: string, params: object): Promise<R> => s.conn.sendRequest<R>(method, params);
  const read = (p: string, name = 'a') => readOverlayFile((q) => s.conn.sendRequest(P.ReadFile.type, q), name, p).then((b) => Buffer.from(b).toString());

  beforeEach(async () => {
    st = makeStack(
      [
        { 'low.txt': 'lower', 'dir/x.txt': 'x', 'dir/y.txt': 'y', 'bin.dat': '\u0000\u0001' },
        { 'deep.txt': 'deep', 'low.txt': 'hidden' },
      ],
      { 'up.txt': 'upper' },
    );
    fs.symlinkSync('low.txt', path.join(st.upper, 'link'));
    s = await startServer({ a: st.spec });
  });
  afterEach(async () => {
    await s.stop();
    st.cleanup();
  });

  it('lists, stats and reads the merged view', async () => {
    const list = await s.conn.sendRequest(P.ListOverlays.type);
    assert.deepEqual(
      list.map((o) => o.name),
      ['a'],
    );
    assert.equal(list[0].readOnly, false);
    const dir = await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/' });
    assert.deepEqual(
      new Map(dir),
      new Map<string, number>([
        ['up.txt', 1],
        ['link', 65],
        ['low.txt', 1],
        ['dir', 2],
        ['bin.dat', 1],
        ['deep.txt', 1],
      ]),
    );
    const stat = await s.conn.sendRequest(P.Stat.type, { name: 'a', path: '/low.txt' });
    assert.equal(stat.type, P.FileType.File);
    assert.equal(stat.size, 5);
    assert.equal(stat.layer, 0);
    assert.equal(stat.realPath, path.join(st.lower[0], 'low.txt'));
    assert.equal((await s.conn.sendRequest(P.Stat.type, { name: 'a', path: '/link' })).type, P.FileType.File | P.FileType.SymbolicLink);
    assert.equal(await read('/low.txt'), 'lower');
    assert.equal(await read('/deep.txt'), 'deep');
    assert.equal(await read('/link'), 'lower');
    const inline = await s.conn.sendRequest(P.ReadFile.type, { name: 'a', path: '/bin.dat', inline: true });
    assert.deepEqual(Buffer.from(inline.data ?? '', 'base64'), Buffer.from([0, 1]));
  });

  it('diff carries types and lower layers; resolveLower and revert bring the lower copy back', async () => {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/low.txt', data: b64('changed'), create: false, overwrite: true });
    await s.conn.sendRequest(P.Delete.type, { name: 'a', path: '/deep.txt', recursive: false });
    await s.conn.sendRequest(P.Delete.type, { name: 'a', path: '/dir', recursive: true });
    const diff = new Map((await s.conn.sendRequest(P.Diff.type, { name: 'a' })).map((c) => [c.path, c]));
    assert.deepEqual(diff.get('/low.txt'), { kind: 'C', path: '/low.txt', type: 'f', lowerLayer: 0 });
    assert.deepEqual(diff.get('/deep.txt'), { kind: 'D', path: '/deep.txt', lowerLayer: 1 });
    assert.deepEqual(diff.get('/up.txt'), { kind: 'A', path: '/up.txt', type: 'f' });
    assert.deepEqual(
      (await s.conn.sendRequest(P.History.type, { name: 'a', path: '/low.txt' })).map((h) => `${h.layer} ${h.kind} ${h.size}`),
      ['upper file 7', '0 file 5', '1 file 6'],
      'history: the upper copy, then each lower copy',
    );
    const lower = await s.conn.sendRequest(P.ResolveLower.type, { name: 'a', path: '/low.txt' });
    assert.equal(lower?.realPath, path.join(st.lower[0], 'low.txt'));
    assert.equal(await s.conn.sendRequest(P.ResolveLower.type, { name: 'a', path: '/up.txt' }), null);
    for (const p of ['/low.txt', '/deep.txt', '/dir']) await s.conn.sendRequest(P.Revert.type, { name: 'a', path: p });
    assert.equal(await read('/low.txt'), 'lower');
    assert.equal(await read('/deep.txt'), 'deep');
    assert.deepEqual((await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/dir' })).map(([n]) => n).sort(), ['x.txt', 'y.txt']);
    assert.deepEqual(
      (await s.conn.sendRequest(P.Diff.type, { name: 'a' })).map((c) => c.path),
      ['/link', '/up.txt'],
    );
    assert.equal(await errorCode(s.conn.sendRequest(P.Revert.type, { name: 'a', path: '/' })), 'EBUSY');
  });

  it('parses Docker stacks with the engine: an overlay2 layer directory and docker inspect JSON', async () => {
    const spec = await s.conn.sendRequest(P.ParseStack.type, {
      dockerInspect: JSON.stringify([{ GraphDriver: { Name: 'overlay2', Data: { LowerDir: '/a:/b', UpperDir: '/u', WorkDir: '/w' } } }]),
    });
    assert.deepEqual(spec, { lower: ['/a', '/b'], upper: '/u', work: '/w' });
    assert.equal(await errorCode(s.conn.sendRequest(P.ParseStack.type, { dockerLayerDir: path.join(st.lower[0], 'nope') })), 'ENOENT');
    assert.equal(await errorCode(s.conn.sendRequest(P.ParseStack.type, {})), 'EINVAL');
  });

  it('writes, copies up, renames, copies, deletes', async () => {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/low.txt', data: b64('changed'), create: false, overwrite: true });
    assert.equal(await read('/low.txt'), 'changed');
    assert.equal(fs.readFileSync(path.join(st.lower[0], 'low.txt'), 'utf8'), 'lower', 'lower layer never written');
    await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/new.bin', data: b64(Buffer.from([0, 255, 10])), create: true, overwrite: false });
    assert.deepEqual(fs.readFileSync(path.join(st.upper, 'new.bin')), Buffer.from([0, 255, 10]));
    await s.conn.sendRequest(P.CreateDirectory.type, { name: 'a', path: '/made' });
    await s.conn.sendRequest(P.Rename.type, { name: 'a', from: '/new.bin', to: '/made/moved.bin', overwrite: false });
    await s.conn.sendRequest(P.Copy.type, { name: 'a', from: '/dir', to: '/made/dircopy', overwrite: false });
    assert.deepEqual((await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/made/dircopy' })).map(([n]) => n).sort(), ['x.txt', 'y.txt']);
    await s.conn.sendRequest(P.Delete.type, { name: 'a', path: '/dir', recursive: true });
    await s.conn.sendRequest(P.Delete.type, { name: 'a', path: '/deep.txt', recursive: false });
    const names = (await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/' })).map(([n]) => n).sort();
    assert.deepEqual(names, ['bin.dat', 'link', 'low.txt', 'made', 'up.txt']);
    const diff = await s.conn.sendRequest(P.Diff.type, { name: 'a' });
    const kinds = new Map(diff.map((c) => [c.path, c.kind]));
    assert.equal(kinds.get('/low.txt'), 'C');
    assert.equal(kinds.get('/dir'), 'D');
    assert.equal(kinds.get('/deep.txt'), 'D');
    assert.equal(kinds.get('/made'), 'A');
  });

  it('maps engine errors to ResponseError data codes', async () => {
    assert.equal(await errorCode(req('overlay/stat', { name: 'a', path: '/missing' })), 'ENOENT');
    assert.equal(await errorCode(req('overlay/writeFile', { name: 'a', path: '/low.txt', data: '', create: true, overwrite: false })), 'EEXIST');
    assert.equal(await errorCode(req('overlay/writeFile', { name: 'a', path: '/nope', data: '', create: false, overwrite: true })), 'ENOENT');
    assert.equal(await errorCode(req('overlay/writeFile', { name: 'a', path: '/dir', data: '', create: true, overwrite: true })), 'EISDIR');
    assert.equal(await errorCode(req('overlay/readFile', { name: 'a', path: '/dir' })), 'EISDIR');
    assert.equal(await errorCode(req('overlay/readDirectory', { name: 'a', path: '/low.txt' })), 'ENOTDIR');
    assert.equal(await errorCode(req('overlay/delete', { name: 'a', path: '/dir', recursive: false })), 'ENOTEMPTY');
    assert.equal(await errorCode(req('overlay/createDirectory', { name: 'a', path: '/dir' })), 'EEXIST');
    assert.equal(await errorCode(req('overlay/createDirectory', { name: 'a', path: '/no/such' })), 'ENOENT');
    assert.equal(await errorCode(req('overlay/rename', { name: 'a', from: '/up.txt', to: '/low.txt', overwrite: false })), 'EEXIST');
    assert.equal(await errorCode(req('overlay/copy', { name: 'a', from: '/nope', to: '/x', overwrite: false })), 'ENOENT');
    assert.equal(await errorCode(req('overlay/read', { name: 'a', handle: 999, position: 0, length: 1 })), 'EBADF');
    try {
      await req('overlay/stat', { name: 'a', path: '/missing' });
    } catch (err) {
      const e = err as { code: number; message: string; data: P.OverlayErrorData };
      assert.equal(e.code, P.OVERLAY_ERROR);
      assert.equal(e.data.path, '/missing');
      assert.match(e.message, /ENOENT/);
    }
  });

  it('handles read and follow a copy-up, write handles copy up', async () => {
    const r = await s.conn.sendRequest(P.Open.type, { name: 'a', path: '/low.txt' });
    const w = await s.conn.sendRequest(P.Open.type, { name: 'a', path: '/low.txt', write: true });
    const got = await s.conn.sendRequest(P.Read.type, { name: 'a', handle: r.handle, position: 0, length: 100 });
    assert.equal(Buffer.from(got.data, 'base64').toString(), 'lower');
    assert.equal((await s.conn.sendRequest(P.Write.type, { name: 'a', handle: w.handle, position: 0, data: b64('LOW') })).bytesWritten, 3);
    const again = await s.conn.sendRequest(P.Read.type, { name: 'a', handle: r.handle, position: 0, length: 100 });
    assert.equal(Buffer.from(again.data, 'base64').toString(), 'LOWer', 'read handle follows the copy-up');
    await s.conn.sendRequest(P.Close.type, { name: 'a', handle: r.handle });
    await s.conn.sendRequest(P.Close.type, { name: 'a', handle: w.handle });
    assert.equal(await errorCode(req('overlay/close', { name: 'a', handle: r.handle })), 'EBADF');
    const c = await s.conn.sendRequest(P.Open.type, { name: 'a', path: '/fresh', write: true, create: true });
    await s.conn.sendRequest(P.Write.type, { name: 'a', handle: c.handle, position: 0, data: b64('hi') });
    await s.conn.sendRequest(P.Close.type, { name: 'a', handle: c.handle });
    assert.equal(fs.readFileSync(path.join(st.upper, 'fresh'), 'utf8'), 'hi');
  });

  it('resolve, layers, search', async () => {
    const r = await s.conn.sendRequest(P.Resolve.type, { name: 'a', path: '/deep.txt' });
    assert.deepEqual(r, { path: '/deep.txt', layer: 1, realPath: path.join(st.lower[1], 'deep.txt'), type: 'f' });
    const layers = await s.conn.sendRequest(P.Layers.type, { name: 'a' });
    assert.deepEqual(
      layers.map((l) => [l.layer, l.writable]),
      [
        ['upper', true],
        [0, false],
        [1, false],
      ],
    );
    const found = await s.conn.sendRequest(P.FindFiles.type, { name: 'a', include: '**/*.txt' });
    assert.deepEqual(found.paths, ['/deep.txt', '/dir/x.txt', '/dir/y.txt', '/low.txt', '/up.txt']);
    const limited = await s.conn.sendRequest(P.FindFiles.type, { name: 'a', include: '*.txt', exclude: 'dir/**', maxResults: 2 });
    assert.deepEqual(limited, { paths: ['/deep.txt', '/low.txt'], limitHit: true });
    const text = await s.conn.sendRequest(P.SearchText.type, { name: 'a', query: 'LOW', isCaseSensitive: false });
    assert.deepEqual(
      text.matches.map((m) => [m.path, m.line, m.character, m.length]),
      [['/low.txt', 0, 0, 3]],
      'the hidden lower copy is not searched',
    );
    const re = await s.conn.sendRequest(P.SearchText.type, { name: 'a', query: '^[xy]$', isRegExp: true });
    assert.deepEqual(
      re.matches.map((m) => m.path),
      ['/dir/x.txt', '/dir/y.txt'],
    );
    assert.equal(await errorCode(req('overlay/searchText', { name: 'a', query: '(', isRegExp: true })), 'EINVAL');
  });

  it('a direct read never returns a copy the server no longer names', async () => {
    // The server named the upper copy; it is replaced (atomic rename, new inode) before the client opens it.
    let calls = 0;
    const data = await readOverlayFile(
      async (q) => {
        const r = await s.conn.sendRequest(P.ReadFile.type, q);
        if (calls++ === 0) {
          await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/up.txt', data: b64('replaced'), create: false, overwrite: true });
        }
        return r;
      },
      'a',
      '/up.txt',
    );
    assert.equal(Buffer.from(data).toString(), 'replaced');
    assert.equal(calls, 2, 'the stale answer was detected by inode and asked again');
    // When every answer is stale, the data comes inline.
    const inline = await readOverlayFile(
      async (q) => {
        const r = await s.conn.sendRequest(P.ReadFile.type, q);
        return q.inline ? r : { ...r, ino: r.ino + 1 };
      },
      'a',
      '/up.txt',
    );
    assert.equal(Buffer.from(inline).toString(), 'replaced');
  });

  it('two overlays at once, added and removed later', async () => {
    const st2 = makeStack([{ 'low.txt': 'second' }]);
    try {
      const info = await s.conn.sendRequest(P.AddOverlay.type, { name: 'b', spec: { lower: st2.lower } });
      assert.equal(info.readOnly, true);
      assert.equal(await read('/low.txt', 'b'), 'second');
      assert.equal(await read('/low.txt', 'a'), 'lower');
      assert.equal((await s.conn.sendRequest(P.Stat.type, { name: 'b', path: '/low.txt' })).permissions, 1);
      assert.equal(await errorCode(req('overlay/writeFile', { name: 'b', path: '/low.txt', data: '', create: true, overwrite: true })), 'EROFS');
      await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/only-a', data: b64('a'), create: true, overwrite: false });
      assert.equal(await errorCode(req('overlay/stat', { name: 'b', path: '/only-a' })), 'ENOENT');
      assert.deepEqual((await s.conn.sendRequest(P.ListOverlays.type)).map((o) => o.name).sort(), ['a', 'b']);
      await s.conn.sendRequest(P.RemoveOverlay.type, { name: 'b' });
      assert.equal(await errorCode(req('overlay/stat', { name: 'b', path: '/low.txt' })), 'ENOENT');
    } finally {
      st2.cleanup();
    }
  });

  it('bad input is answered with an error, never a crash', async () => {
    const unknown = req('overlay/stat', { name: 'nosuch', path: '/' }).catch((e: { message: string; data: P.OverlayErrorData }) => e);
    const e = (await unknown) as { message: string; data: P.OverlayErrorData };
    assert.equal(e.data.code, 'ENOENT');
    assert.match(e.message, /unknown overlay "nosuch"/);
    assert.equal(await errorCode(req('overlay/stat', { name: 'a', path: '/../../etc/passwd' })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/stat', { name: 'a', path: 'relative' })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/stat', { name: 'a', path: '/a\u0000b' })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/readFile', { name: 'a', path: '/dir/../../../etc/passwd' })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/stat', { name: 'a' })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/stat', { name: 42, path: '/' })), 'EINVAL');
    assert.equal(await errorCode(s.conn.sendRequest('overlay/stat', [1, 2, 3])), 'EINVAL');
    assert.equal(await errorCode(s.conn.sendRequest('overlay/stat')), 'EINVAL');
    assert.equal(await errorCode(req('overlay/writeFile', { name: 'a', path: '/x', data: 'not base64!!', create: true, overwrite: true })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/read', { name: 'a', handle: -1, position: 0, length: 1 })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/addOverlay', { name: 'bad', spec: { lower: '/tmp' } })), 'EINVAL');
    assert.equal(await errorCode(req('overlay/addOverlay', { name: 'bad', spec: { lower: ['/does/not/exist'] } })), 'ENOENT');
    assert.equal(await errorCode(req('overlay/addOverlay', { name: 'bad', spec: { lower: [st.lower[0]], upper: st.lower[0], work: st.work } })), 'EINVAL');
    // Symlinks never lead out of the overlay root.
    fs.symlinkSync('/etc', path.join(st.upper, 'etc-link'));
    assert.equal(await errorCode(req('overlay/stat', { name: 'a', path: '/etc-link/passwd' })), 'ENOENT');
    // Still alive and answering.
    assert.equal(s.child.exitCode, null);
    assert.equal(await read('/low.txt'), 'lower');
  });
});
