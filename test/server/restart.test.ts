/** Restarting the server loses nothing: everything acknowledged is on disk, the next server serves it and watches again. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { b64, makeStack, startServer, until, watchReady, type Stack, type Started } from './harness';

describe('server restart', () => {
  let st: Stack;
  const servers: Started[] = [];
  const start = async (o: Record<string, P.StackSpec>) => {
    const s = await startServer(o);
    servers.push(s);
    return s;
  };
  const read = (s: Started, p: string) => readOverlayFile((q) => s.conn.sendRequest(P.ReadFile.type, q), 'r', p).then((b) => Buffer.from(b).toString());

  beforeEach(() => {
    st = makeStack([{ 'a.txt': 'a', 'b.txt': 'b', 'gone.txt': 'g', 'd/c.txt': 'c' }]);
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    st.cleanup();
  });

  async function mutate(s: Started): Promise<P.Diff.Change[]> {
    await s.conn.sendRequest(P.WriteFile.type, { name: 'r', path: '/a.txt', data: b64('A'), create: false, overwrite: true });
    await s.conn.sendRequest(P.WriteFile.type, { name: 'r', path: '/new.txt', data: b64('new'), create: true, overwrite: false });
    await s.conn.sendRequest(P.Delete.type, { name: 'r', path: '/gone.txt', recursive: false });
    await s.conn.sendRequest(P.Rename.type, { name: 'r', from: '/b.txt', to: '/d/b.txt', overwrite: false });
    const h = await s.conn.sendRequest(P.Open.type, { name: 'r', path: '/d/c.txt', write: true });
    await s.conn.sendRequest(P.Write.type, { name: 'r', handle: h.handle, position: 1, data: b64('++') });
    // The handle stays open: a crash must not lose what was acknowledged.
    return s.conn.sendRequest(P.Diff.type, { name: 'r' });
  }

  async function check(s: Started, diffBefore: P.Diff.Change[]): Promise<void> {
    assert.equal(await read(s, '/a.txt'), 'A');
    assert.equal(await read(s, '/new.txt'), 'new');
    assert.equal(await read(s, '/d/b.txt'), 'b');
    assert.equal(await read(s, '/d/c.txt'), 'c++');
    assert.deepEqual((await s.conn.sendRequest(P.ReadDirectory.type, { name: 'r', path: '/' })).map(([n]) => n).sort(), ['a.txt', 'd', 'new.txt']);
    assert.deepEqual(await s.conn.sendRequest(P.Diff.type, { name: 'r' }), diffBefore);
    assert.deepEqual(fs.readdirSync(path.join(st.work, 'work')), [], 'no temp files left in the work dir');
    // Watching and copy-up notifications work again.
    await watchReady(s);
    fs.writeFileSync(path.join(st.upper, 'after.txt'), 'x');
    await until(() => s.changes.some((c) => c.path === '/after.txt' && c.type === P.FileChangeType.Created), 5000, 'Created after restart');
    await s.conn.sendRequest(P.WriteFile.type, { name: 'r', path: '/d/b.txt', data: b64('B'), create: false, overwrite: true });
    await s.conn.sendRequest(P.WriteFile.type, { name: 'r', path: '/d/c.txt', data: b64('C'), create: false, overwrite: true });
    assert.equal(fs.readFileSync(path.join(st.lower[0], 'd/c.txt'), 'utf8'), 'c');
  }

  it('after a clean shutdown', async () => {
    const a = await start({ r: st.spec });
    const diff = await mutate(a);
    await a.stop();
    assert.equal(await a.exited, 0);
    await check(await start({ r: st.spec }), diff);
  });

  it('after the server is killed', async () => {
    const a = await start({ r: st.spec });
    const diff = await mutate(a);
    a.child.kill('SIGKILL');
    await a.exited;
    await check(await start({ r: st.spec }), diff);
  });

  it('an overlay added later is added again by the client with nothing lost', async () => {
    const a = await start({});
    await a.conn.sendRequest(P.AddOverlay.type, { name: 'r', spec: st.spec });
    const diff = await mutate(a);
    await a.stop();
    const b = await start({});
    assert.deepEqual(await b.conn.sendRequest(P.ListOverlays.type), []);
    await b.conn.sendRequest(P.AddOverlay.type, { name: 'r', spec: st.spec });
    await check(b, diff);
  });
});
