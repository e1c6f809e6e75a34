/**
 * The merged-listing and opaque-xattr caches of the lookup: remembered while the
 * directories keep their inode, mtime and ctime, so every change made behind the
 * engine's back (an outside writer in the upper layer) is seen at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'mocha';
import { lookupTuning } from '../../server/src/overlay/lookup';
import { FORMATS, makeStack, names, opaque, whiteout } from './helpers';

/** Past one timestamp tick (coarse clocks tick every 1–10 ms), so a change shows in mtime/ctime. */
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 30));

describe('listing cache', () => {
  let saved = 0;
  before(() => {
    saved = lookupTuning.racyMs;
    lookupTuning.racyMs = 0;
  }); // cache everything at once
  after(() => {
    lookupTuning.racyMs = saved;
  });

  for (const format of FORMATS) {
    test(`outside changes to the upper layer show at once (${format} whiteouts)`, async () => {
      const s = makeStack(format, [{ 'd/a': 'a', 'd/b': 'b', 'e/x': 'x' }]);
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/d'), ['a', 'b']);
        assert.deepEqual(await names(ov, '/d'), ['a', 'b']); // served from the cache
        // The upper directory appears: the merge changes.
        await tick();
        fs.mkdirSync(path.join(s.upper, 'd'));
        fs.writeFileSync(path.join(s.upper, 'd/c'), 'c');
        assert.deepEqual(await names(ov, '/d'), ['a', 'b', 'c']);
        // A name added to an existing upper directory.
        await tick();
        fs.writeFileSync(path.join(s.upper, 'd/e'), 'e');
        assert.deepEqual(await names(ov, '/d'), ['a', 'b', 'c', 'e']);
        // A whiteout made by an outside writer hides a lower name.
        await tick();
        whiteout(path.join(s.upper, 'd/a'), format);
        assert.deepEqual(await names(ov, '/d'), ['b', 'c', 'e']);
        // The upper directory made opaque: the lower names go (an xattr changes only the ctime).
        await tick();
        opaque(path.join(s.upper, 'd'), format);
        assert.deepEqual(await names(ov, '/d'), ['c', 'e']);
        await tick();
        if (format === 'kernel') execFileSync('setfattr', ['-x', 'trusted.overlay.opaque', path.join(s.upper, 'd')]);
        else fs.unlinkSync(path.join(s.upper, 'd/.wh..wh..opq'));
        assert.deepEqual(await names(ov, '/d'), ['b', 'c', 'e']);
        // The upper directory replaced by a file of the same name: a new inode.
        assert.deepEqual(await names(ov, '/e'), ['x']);
        await tick();
        fs.mkdirSync(path.join(s.upper, 'e'));
        assert.deepEqual(await names(ov, '/e'), ['x']);
        fs.rmSync(path.join(s.upper, 'e'), { recursive: true });
        fs.mkdirSync(path.join(s.upper, 'e'));
        fs.writeFileSync(path.join(s.upper, 'e/y'), 'y');
        assert.deepEqual(await names(ov, '/e'), ['x', 'y']);
      } finally {
        s.cleanup();
      }
    });

    test(`the engine's own writes show at once (${format} whiteouts)`, async () => {
      const s = makeStack(format, [{ 'd/a': 'a', 'd/b': 'b' }], { 'd/u': 'u' });
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/d'), ['a', 'b', 'u']);
        await tick();
        await ov.writeFile('/d/n', Buffer.from('n'));
        assert.deepEqual(await names(ov, '/d'), ['a', 'b', 'n', 'u']);
        await tick();
        await ov.unlink('/d/a');
        assert.deepEqual(await names(ov, '/d'), ['b', 'n', 'u']);
        await tick();
        await ov.rename('/d/b', '/d/bb');
        assert.deepEqual(await names(ov, '/d'), ['bb', 'n', 'u']);
        (await ov.readdir('/d')).reverse(); // a caller that sorts or reverses its copy changes nothing
        assert.deepEqual((await ov.readdir('/d')).map((e) => e.name).sort(), ['bb', 'n', 'u']);
      } finally {
        s.cleanup();
      }
    });
  }

  test('an xattr whiteout made in place shows at once (only the directory ctime changes)', async () => {
    const s = makeStack('kernel', [{ 'd/a': 'a', 'd/b': 'b' }], { 'd/a': '' });
    try {
      const ov = await s.open();
      assert.deepEqual(await names(ov, '/d'), ['a', 'b']);
      await tick();
      execFileSync('setfattr', ['-n', 'trusted.overlay.whiteout', '-v', 'y', path.join(s.upper, 'd/a')]);
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'x', path.join(s.upper, 'd')]);
      assert.deepEqual(await names(ov, '/d'), ['b']);
    } finally {
      s.cleanup();
    }
  });

  test('a lower layer changed on disk shows after invalidateLowers (the watcher calls it)', async () => {
    const s = makeStack('kernel', [{ 'd/a': 'a' }]);
    try {
      const ov = await s.open();
      assert.deepEqual(await names(ov, '/d'), ['a']);
      await tick();
      fs.writeFileSync(path.join(s.lower[0], 'd/b'), 'b');
      ov.invalidateLowers();
      assert.deepEqual(await names(ov, '/d'), ['a', 'b']);
    } finally {
      s.cleanup();
    }
  });
});
