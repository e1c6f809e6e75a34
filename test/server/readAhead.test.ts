/**
 * overlay/readDirectories and the client's read-ahead (client/src/readAhead.ts) against
 * the real server: the same listings as one readDirectory per directory, fewer round
 * trips, and nothing read ahead outlives a change to its overlay.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { ReadAhead } from '../../client/src/readAhead';
import { makeStack, startServer, until, watchReady, type Stack, type Started } from './harness';

/** A listing of overlay/readDirectories as [name, type] pairs, sorted. */
const pairsOf = (l: P.ReadDirectories.Listing): [string, number][] => {
  assert.equal(l.names.length, l.types.length, `${l.path}: as many types as names`);
  return l.names.map((n, i): [string, number] => [n, l.types[i]]).sort();
};

/** Every directory's listing, one readDirectory each (sorted for comparison). */
async function plainWalk(s: Started, name: string): Promise<Map<string, [string, number][]>> {
  const out = new Map<string, [string, number][]>();
  const queue = ['/'];
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    const entries = await s.conn.sendRequest(P.ReadDirectory.type, { name, path: dir });
    out.set(dir, [...entries].sort());
    for (const [n, t] of entries) if (t === P.FileType.Directory) queue.push((dir === '/' ? '' : dir) + '/' + n);
  }
  return out;
}

describe('read-ahead of listings', () => {
  let st: Stack;
  let s: Started;
  const files: Record<string, string> = {};
  const upperFiles: Record<string, string> = {};

  before(async () => {
    // 3 × 4 × 5 directories with 3 files each over two lowers; the upper hides and adds.
    for (let a = 0; a < 3; a++) for (let b = 0; b < 4; b++) for (let c = 0; c < 5; c++) for (let f = 0; f < 3; f++) files[`a${a}/b${b}/c${c}/f${f}`] = 'x';
    for (let a = 0; a < 3; a++) upperFiles[`a${a}/added`] = 'u';
    st = makeStack([files, { 'a0/b0/only-in-lower-1': 'y', 'deep/er/est/file': 'z' }], upperFiles);
    execFileSync('mknod', [path.join(st.upper, 'a1', 'b1'), 'c', '0', '0']); // a whiteout of a lower directory
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(st.upper, 'a2')]); // a2: only the upper's
    fs.symlinkSync('a0', path.join(st.upper, 'link-to-a0')); // listed, never descended into from above
    s = await startServer({ r: st.spec });
    await watchReady(s);
  });
  after(async () => {
    await s.stop();
    st.cleanup();
  });

  it('readDirectories: the first listing whole, the others whole and breadth first, within the budget', async () => {
    const plain = await plainWalk(s, 'r');
    for (const budget of [0, 1, 10, 50, 100_000]) {
      const listings = await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/', budget });
      assert.equal(listings[0].path, '/');
      const seen = new Set<string>();
      let beyondFirst = 0;
      for (const l of listings) {
        assert.ok(!seen.has(l.path), `${l.path} listed twice`);
        seen.add(l.path);
        assert.deepEqual(pairsOf(l), plain.get(l.path), `listing of ${l.path} (budget ${budget})`);
        if (l !== listings[0]) beyondFirst += l.names.length;
      }
      assert.ok(
        beyondFirst + listings[0].names.length <= Math.max(budget, listings[0].names.length),
        `budget ${budget}: ${beyondFirst} entries beyond the first`,
      );
      const depths = listings.map((l) => (l.path === '/' ? 0 : l.path.split('/').length - 1));
      assert.deepEqual(
        depths,
        [...depths].sort((x, y) => x - y),
        'breadth first',
      );
      if (budget === 100_000) assert.equal(listings.length, plain.size, 'a big budget lists the whole tree');
      if (budget === 0) assert.equal(listings.length, 1, 'no budget: the directory alone');
    }
  });

  it('through a symlinked directory: listings named by the path asked for, the same as asked one by one', async () => {
    const listings = await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/link-to-a0', budget: 100_000 });
    assert.equal(listings[0].path, '/link-to-a0');
    assert.ok(listings.length > 5);
    for (const l of listings) {
      assert.ok(l.path.startsWith('/link-to-a0'), l.path);
      assert.deepEqual(pairsOf(l), [...(await s.conn.sendRequest(P.ReadDirectory.type, { name: 'r', path: l.path }))].sort(), l.path);
    }
    const fromRoot = await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/', budget: 100_000 });
    assert.ok(!fromRoot.some((l) => l.path.startsWith('/link-to-a0')), 'a symlink is not descended into from above');
    assert.deepEqual(
      pairsOf(fromRoot[0]).find(([n]) => n === 'link-to-a0'),
      ['link-to-a0', P.FileType.SymbolicLink | P.FileType.Directory],
    );
  });

  it('a walk through the read-ahead sees the same tree in far fewer round trips', async () => {
    const plain = await plainWalk(s, 'r');
    const ra = new ReadAhead((p) => s.conn.sendRequest(P.ReadDirectories.type, p), { budget: 40 });
    const queue = ['/'];
    const seen = new Map<string, [string, number][]>();
    while (queue.length > 0) {
      const dir = queue.pop() as string;
      const entries = await ra.readDirectory('r', dir);
      seen.set(dir, [...entries].sort());
      for (const [n, t] of entries) if (t === P.FileType.Directory) queue.push((dir === '/' ? '' : dir) + '/' + n);
    }
    assert.deepEqual(seen, plain);
    assert.equal(ra.hits + ra.fetches, plain.size);
    assert.ok(ra.fetches < plain.size / 3, `${ra.fetches} round trips for ${plain.size} directories`);
  });

  it("an overlay's first round trip asks for the first budget only (the root shows without waiting for more), the next ones for the whole", async () => {
    const asked: number[] = [];
    const ra = new ReadAhead(
      (p) => {
        asked.push(p.budget);
        return s.conn.sendRequest(P.ReadDirectories.type, p);
      },
      { budget: 40, firstBudget: 5 },
    );
    const root = await ra.readDirectory('r', '/');
    assert.deepEqual([...root].sort(), pairsOf((await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/', budget: 0 }))[0]));
    await ra.readDirectory('r', '/a2');
    assert.deepEqual(asked, [5, 40]);
    assert.equal(new ReadAhead(async () => [], { budget: 40 }).firstBudget, 40, 'never more than the budget');
    assert.equal(new ReadAhead(async () => []).firstBudget, 512);
  });

  it('an outside change drops what was read ahead of its overlay: the next listing is fresh', async () => {
    const ra = new ReadAhead((p) => s.conn.sendRequest(P.ReadDirectories.type, p));
    await ra.readDirectory('r', '/');
    assert.ok(ra.size > 0, 'listings below / are read ahead');
    const before = s.changes.length;
    fs.writeFileSync(path.join(st.upper, 'a2', 'outside.txt'), 'o');
    await until(() => s.changes.slice(before).some((c) => c.path === '/a2/outside.txt'), 5000, 'the change event');
    // What the extension does with each change notification (fsProvider.ts).
    for (const n of new Set(s.changes.slice(before).map((c) => c.name))) ra.changed(n);
    assert.equal(ra.size, 0, 'nothing held after the change');
    assert.ok((await ra.readDirectory('r', '/a2')).some(([n]) => n === 'outside.txt'));
  });

  it('a listing is served from the read-ahead once, and not after its time is up', async () => {
    let now = 0;
    const ra = new ReadAhead((p) => s.conn.sendRequest(P.ReadDirectories.type, p), { ttlMs: 1000, now: () => now });
    await ra.readDirectory('r', '/');
    const fetches = ra.fetches;
    await ra.readDirectory('r', '/a0');
    assert.equal(ra.fetches, fetches, 'read ahead');
    await ra.readDirectory('r', '/a0');
    assert.equal(ra.fetches, fetches + 1, 'asked again: a round trip');
    now = 1001;
    await ra.readDirectory('r', '/a1');
    assert.equal(ra.fetches, fetches + 2, 'expired: a round trip');
  });

  it('a change while a fetch is in flight: the listings it brings are not kept', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const ra = new ReadAhead(async (p) => {
      const l = await s.conn.sendRequest(P.ReadDirectories.type, p);
      await gate;
      return l;
    });
    const pending = ra.readDirectory('r', '/');
    ra.changed('r');
    release();
    assert.ok((await pending).length > 0, 'the listing asked for is still answered');
    assert.equal(ra.size, 0);
    ra.changed('other'); // another overlay's changes do not matter
    await ra.readDirectory('r', '/');
    assert.ok(ra.size > 0);
    // clear() (a server stop or restart) drops what is held and what is on its way.
    let release2: () => void = () => undefined;
    const gate2 = new Promise<void>((r) => {
      release2 = r;
    });
    const ra2 = new ReadAhead(async (p) => {
      const l = await s.conn.sendRequest(P.ReadDirectories.type, p);
      await gate2;
      return l;
    });
    const pending2 = ra2.readDirectory('r', '/');
    ra2.clear();
    release2();
    await pending2;
    assert.equal(ra2.size, 0);
    ra.clear();
    assert.equal(ra.size, 0);
  });

  it('holds at most maxHeld entries, dropping the oldest listings', async () => {
    const order = (await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/', budget: 4096 })).map((l) => l.path);
    const ra = new ReadAhead((p) => s.conn.sendRequest(P.ReadDirectories.type, p), { maxHeld: 30 });
    await ra.readDirectory('r', '/');
    const held = ra.size;
    assert.ok(held > 0 && held < order.length - 1, `${held} of ${order.length - 1} listings held`);
    // Listings come breadth first: the newest (last) is kept, the oldest (second) dropped.
    const fetches = ra.fetches;
    await ra.readDirectory('r', order[order.length - 1]);
    assert.equal(ra.fetches, fetches, `${order[order.length - 1]} was kept`);
    await ra.readDirectory('r', order[1]);
    assert.equal(ra.fetches, fetches + 1, `${order[1]} was dropped`);
  });

  it('a directory that cannot be listed is left out, and fails when asked for itself', async () => {
    const listings = await s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/deep', budget: 1000 });
    assert.deepEqual(
      listings.map((l) => l.path),
      ['/deep', '/deep/er', '/deep/er/est'],
    );
    await assert.rejects(s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/deep/er/est/file', budget: 1000 }), /ENOTDIR|not a directory/i);
    await assert.rejects(s.conn.sendRequest(P.ReadDirectories.type, { name: 'r', path: '/', budget: -1 }), /budget/);
  });
});
