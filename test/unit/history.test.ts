import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'mocha';
import { FORMATS, makeStack, runCli } from './helpers';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

for (const format of FORMATS) {
  describe(`history of a path across layers (${format})`, () => {
    test('changed in three layers and deleted in a fourth: four entries, top to bottom', async () => {
      // lowers top-most first: l0 deletes it, l1..l3 each have their own copy
      const s = makeStack(format, [{ 'etc/conf': { whiteout: true } }, { 'etc/conf': 'three' }, { 'etc/conf': 'second' }, { 'etc/conf': 'one' }]);
      try {
        const ov = await s.open();
        assert.deepEqual(await ov.history('/etc/conf'), [
          { layer: 0, kind: 'whiteout' },
          { layer: 1, kind: 'file', size: 5, sha256: sha('three') },
          { layer: 2, kind: 'file', size: 6, sha256: sha('second') },
          { layer: 3, kind: 'file', size: 3, sha256: sha('one') },
        ]);
        // written again in the upper: a fifth, on top
        await ov.writeFile('/etc/conf', 'again');
        assert.deepEqual((await ov.history('/etc/conf'))[0], { layer: 'upper', kind: 'file', size: 5, sha256: sha('again') });
        await ov.close();
      } finally {
        s.cleanup();
      }
    });

    test('an opaque directory above hides the path; directories, symlinks; nothing anywhere is ENOENT', async () => {
      const s = makeStack(format, [
        { d: { opaque: true }, 'd/new': 'n', l: { link: '/etc/target' } },
        { 'd/old': 'o', 'd/sub/x': 'x', l: 'was a file' },
      ]);
      try {
        const ov = await s.open();
        assert.deepEqual(await ov.history('/d/old'), [
          { layer: 0, kind: 'opaque' },
          { layer: 1, kind: 'file', size: 1, sha256: sha('o') },
        ]);
        assert.deepEqual(await ov.history('/d'), [
          { layer: 0, kind: 'opaque' },
          { layer: 1, kind: 'dir' },
        ]);
        assert.deepEqual(
          await ov.history('/d/new'),
          [{ layer: 0, kind: 'file', size: 1, sha256: sha('n') }],
          'an opaque directory above hides nothing below when no layer below has the path',
        );
        assert.deepEqual(await ov.history('/l'), [
          { layer: 0, kind: 'symlink', target: '/etc/target' },
          { layer: 1, kind: 'file', size: 10, sha256: sha('was a file') },
        ]);
        await assert.rejects(ov.history('/nowhere/x'), { code: 'ENOENT' });
        await ov.close();
      } finally {
        s.cleanup();
      }
    });

    test('overlayws STACK history PATH prints one JSON line per layer; a deleted ancestor is a whiteout that hides it', async () => {
      const s = makeStack(format, [{ 'a/b': 'b' }]);
      try {
        const ov = await s.open();
        await ov.rm('/a', { recursive: true });
        await ov.close();
        const r = runCli(['--lower', s.lower[0], '--upper', s.upper, '--work', s.work, '--whiteouts', format, 'history', '/a/b']);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out, `{"layer":"upper","kind":"whiteout"}\n{"layer":0,"kind":"file","size":1,"sha256":"${sha('b')}"}\n`);
        const none = runCli(['--lower', s.lower[0], 'history', '/zz']);
        assert.equal(none.code, 1);
        assert.equal(none.err, "overlayws: ENOENT: no layer has anything at this path, '/zz'\n");
      } finally {
        s.cleanup();
      }
    });
  });
}
