/**
 * Names that are not valid UTF-8, over a real connection: listed with U+F780–U+F7FF
 * escapes, read through the client's transport (the server answers inline: the client
 * cannot open such a real path as a string), written under the same bytes, found by search.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { b64, makeStack, startServer, until, watchReady, type Stack, type Started } from './harness';

const bp = (root: string, ...parts: (string | number[])[]): Buffer => Buffer.concat([Buffer.from(root), ...parts.map((p) => Buffer.from(p as string))]);

describe('server: names that are not UTF-8', () => {
  let st: Stack;
  let s: Started;

  beforeEach(async () => {
    st = makeStack([{ 'plain.txt': 'plain' }]);
    fs.writeFileSync(bp(st.lower[0], '/f', [0xff], 'o'), 'ff bytes');
    fs.writeFileSync(bp(st.lower[0], '/f', [0xfe], 'o'), 'fe bytes!');
    fs.mkdirSync(bp(st.lower[0], '/d', [0x80]));
    fs.writeFileSync(bp(st.lower[0], '/d', [0x80], '/in', [0xc3]), 'needle inside');
    s = await startServer({ a: st.spec });
  });
  afterEach(async () => {
    await s.stop();
    st.cleanup();
  });

  const read = (p: string): Promise<string> => readOverlayFile((q) => s.conn.sendRequest(P.ReadFile.type, q), 'a', p).then((b) => Buffer.from(b).toString());

  it('readDirectory then readFile of each name returns that file’s bytes', async () => {
    const dir = await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/' });
    assert.deepEqual(
      new Map(dir),
      new Map([
        ['plain.txt', P.FileType.File],
        ['f\uF7FFo', P.FileType.File],
        ['f\uF7FEo', P.FileType.File],
        ['d\uF780', P.FileType.Directory],
      ]),
    );
    assert.equal(await read('/f\uF7FFo'), 'ff bytes');
    assert.equal(await read('/f\uF7FEo'), 'fe bytes!');
    const sub = await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/d\uF780' });
    assert.deepEqual(sub, [['in\uF7C3', P.FileType.File]]);
    assert.equal(await read('/d\uF780/in\uF7C3'), 'needle inside');
    // Where the copy lives is a path the client cannot open as a string: the data comes inline.
    const where = await s.conn.sendRequest(P.ReadFile.type, { name: 'a', path: '/f\uF7FEo' });
    assert.equal(Buffer.from(where.data ?? '', 'base64').toString(), 'fe bytes!');
    assert.equal((await s.conn.sendRequest(P.ReadFile.type, { name: 'a', path: '/plain.txt' })).data, undefined, 'plain names still read by the client');
    assert.equal((await s.conn.sendRequest(P.Stat.type, { name: 'a', path: '/f\uF7FEo' })).size, 9);
  });

  it('writes land under the same bytes; search finds the names', async () => {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'a', path: '/f\uF7FFo', data: b64('new'), create: false, overwrite: true });
    assert.equal(fs.readFileSync(bp(st.upper, '/f', [0xff], 'o'), 'utf8'), 'new');
    assert.equal(await read('/f\uF7FFo'), 'new');
    assert.equal(await read('/f\uF7FEo'), 'fe bytes!');
    await s.conn.sendRequest(P.Rename.type, { name: 'a', from: '/f\uF7FEo', to: '/g\uF7FE', overwrite: false });
    assert.equal(fs.readFileSync(bp(st.upper, '/g', [0xfe]), 'utf8'), 'fe bytes!');
    const found = await s.conn.sendRequest(P.FindFiles.type, { name: 'a' });
    assert.deepEqual(found.paths.slice().sort(), ['/d\uF780/in\uF7C3', '/f\uF7FFo', '/g\uF7FE', '/plain.txt']);
    const text = await s.conn.sendRequest(P.SearchText.type, { name: 'a', query: 'needle' });
    assert.deepEqual(
      text.matches.map((m) => m.path),
      ['/d\uF780/in\uF7C3'],
    );
    const diff = (await s.conn.sendRequest(P.Diff.type, { name: 'a' })).map((c) => `${c.kind} ${c.path}`);
    assert.deepEqual(diff, ['D /f\uF7FEo', 'C /f\uF7FFo', 'A /g\uF7FE'], 'bytewise order');
  });

  it('outside writers: the watcher names the files by their own bytes, never by a U+FFFD spelling', async () => {
    await watchReady(s);
    fs.writeFileSync(bp(st.upper, '/f', [0xff], 'o'), 'copied up outside'); // an outside copy-up
    await until(() => s.copyUps.some((c) => c.path === '/f\uF7FFo'), 5000, 'copy-up of /f\uF7FFo by outside');
    fs.writeFileSync(bp(st.upper, '/n', [0xfe]), 'made outside');
    await until(() => s.changes.some((c) => c.path === '/n\uF7FE' && c.type === P.FileChangeType.Created), 5000, 'Created /n\uF7FE');
    fs.unlinkSync(bp(st.upper, '/n', [0xfe]));
    await until(() => s.changes.some((c) => c.path === '/n\uF7FE' && c.type === P.FileChangeType.Deleted), 5000, 'Deleted /n\uF7FE');
    assert.deepEqual(
      s.changes.filter((c) => c.path.includes('\uFFFD')),
      [],
      'no event for a lossy spelling',
    );
    assert.ok(!s.changes.some((c) => c.path === '/f\uF7FEo'), 'an untouched neighbour has no event');
  });
});
