import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, test } from 'mocha';
import { FORMATS, makeStack, names, rejects } from './helpers';

for (const format of FORMATS) {
  describe(`lookup and readdir (${format} whiteouts)`, () => {
    test('upper hides lower; directories merge; readdir lists each name once', async () => {
      const s = makeStack(
        format,
        [
          { 'd/a': 'l0-a', 'd/b': 'l0-b' },
          { 'd/a': 'l1-a', 'd/c': 'l1-c', top: 'bottom' },
        ],
        { 'd/b': 'up-b' },
      );
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/'), ['d', 'top']);
        assert.deepEqual(await names(ov, '/d'), ['a', 'b', 'c']);
        assert.equal((await ov.readFile('/d/a')).toString(), 'l0-a');
        assert.equal((await ov.readFile('/d/b')).toString(), 'up-b');
        assert.equal((await ov.readFile('/d/c')).toString(), 'l1-c');
        assert.equal((await ov.stat('/d/b')).layer, 'upper');
        assert.equal((await ov.stat('/d/a')).layer, 0);
        assert.equal((await ov.stat('/d/c')).layer, 1);
        assert.equal((await ov.stat('/d')).layer, 'upper');
      } finally {
        s.cleanup();
      }
    });

    test('whiteouts are never listed and hide lower names', async () => {
      const s = makeStack(
        format,
        [
          { 'd/gone': { whiteout: true }, 'd/keep': 'k' },
          { 'd/gone': 'old', 'd/also': 'x' },
        ],
        { 'd/also': { whiteout: true } },
      );
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/d'), ['keep']);
        await rejects(ov.stat('/d/gone'), 'ENOENT');
        await rejects(ov.readFile('/d/also'), 'ENOENT');
      } finally {
        s.cleanup();
      }
    });

    test('opaque directory stops the merge with lower layers', async () => {
      const s = makeStack(format, [
        { 'd/new': 'n', d: { opaque: true } },
        { 'd/old': 'o', 'd/sub/x': 'x' },
      ]);
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/d'), ['new']);
        await rejects(ov.stat('/d/sub/x'), 'ENOENT');
      } finally {
        s.cleanup();
      }
    });

    test('a non-directory hides a directory below, and the reverse', async () => {
      const s = makeStack(format, [
        { x: 'file over dir', y: null, 'y/in': '1' },
        { 'x/under': 'u', y: 'file under dir' },
      ]);
      try {
        const ov = await s.open();
        assert.equal((await ov.stat('/x')).type, 'f');
        await rejects(ov.readdir('/x'), 'ENOTDIR');
        await rejects(ov.stat('/x/under'), 'ENOTDIR');
        assert.deepEqual(await names(ov, '/y'), ['in']);
      } finally {
        s.cleanup();
      }
    });

    test('a directory hiding a lower file does not merge with anything below it', async () => {
      const s = makeStack(format, [{ 'd/a': '0' }, { d: 'a file' }, { 'd/z': 'deep' }]);
      try {
        const ov = await s.open();
        assert.deepEqual(await names(ov, '/d'), ['a']);
      } finally {
        s.cleanup();
      }
    });

    test('readdir reports types; ranged reads; readlink', async () => {
      const s = makeStack(format, [{ f: '0123456789', dir: null, ln: { link: 'f' } }]);
      try {
        const ov = await s.open();
        assert.deepEqual(
          (await ov.readdir('/')).sort((a, b) => a.name.localeCompare(b.name)),
          [
            { name: 'dir', type: 'd' },
            { name: 'f', type: 'f' },
            { name: 'ln', type: 'l' },
          ],
        );
        assert.equal((await ov.read('/f', 3, 4)).toString(), '3456');
        assert.equal((await ov.read('/f', 8, 10)).toString(), '89');
        assert.equal(await ov.readlink('/ln'), 'f');
        assert.equal((await ov.lstat('/ln')).type, 'l');
        assert.equal((await ov.stat('/ln')).type, 'f');
        await rejects(ov.readlink('/f'), 'EINVAL');
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('paths and symlinks stay inside the stack', () => {
  test('request paths with .., NUL or not absolute are refused', async () => {
    const s = makeStack('kernel', [{ a: 'a' }]);
    try {
      const ov = await s.open();
      for (const p of ['/../etc/passwd', '/a/../../x', 'relative', '/a\0b', '']) await rejects(ov.stat(p), 'EINVAL');
      await rejects(ov.stat('/' + 'n'.repeat(300)), 'ENAMETOOLONG');
    } finally {
      s.cleanup();
    }
  });

  test('absolute and .. symlink targets resolve inside the merged root', async () => {
    const s = makeStack('kernel', [
      { 'etc/passwd': 'container passwd', abs: { link: '/etc/passwd' }, up: { link: '../../../../etc/passwd' }, 'd/rel': { link: '../etc' } },
    ]);
    try {
      const ov = await s.open();
      assert.equal((await ov.readFile('/abs')).toString(), 'container passwd');
      assert.equal((await ov.readFile('/up')).toString(), 'container passwd');
      assert.equal((await ov.readFile('/d/rel/passwd')).toString(), 'container passwd');
      assert.equal((await ov.stat('/abs')).realPath, `${s.lower[0]}/etc/passwd`);
    } finally {
      s.cleanup();
    }
  });

  test('symlink loops end in ELOOP', async () => {
    const s = makeStack('kernel', [{ a: { link: 'b' }, b: { link: 'a' } }]);
    try {
      const ov = await s.open();
      await rejects(ov.readFile('/a'), 'ELOOP');
    } finally {
      s.cleanup();
    }
  });

  test('devices and FIFOs are never opened for reading', async () => {
    const s = makeStack('kernel', [{}]);
    try {
      fs.mkdirSync(s.lower[0], { recursive: true });
      execFileSync('mkfifo', [s.lower[0] + '/fifo']);
      const ov = await s.open();
      assert.equal((await ov.stat('/fifo')).type, 'p');
      await rejects(ov.readFile('/fifo'), 'EINVAL');
    } finally {
      s.cleanup();
    }
  });
});
