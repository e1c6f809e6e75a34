import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { FORMATS, makeStack, names, rejects, snapshot } from './helpers';

function isWhiteout(upperDir: string, name: string, format: string): boolean {
  if (format === 'oci') return fs.existsSync(`${upperDir}/.wh.${name}`);
  const st = fs.lstatSync(`${upperDir}/${name}`, { throwIfNoEntry: false });
  return !!st && st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(dir: string, format: string): boolean {
  if (format === 'oci') return fs.existsSync(`${dir}/.wh..wh..opq`);
  try {
    return execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) === 'y';
  } catch {
    return false;
  }
}

for (const format of FORMATS) {
  describe(`writes and copy-up (${format} whiteouts)`, () => {
    test('first write copies up with parents; lower layers never change', async () => {
      const s = makeStack(format, [{ 'a/b/f': 'lower data' }]);
      try {
        fs.chmodSync(`${s.lower[0]}/a/b`, 0o750);
        fs.chmodSync(`${s.lower[0]}/a/b/f`, 0o640);
        execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', `${s.lower[0]}/a/b/f`]);
        const past = new Date('2020-01-02T03:04:05Z');
        fs.utimesSync(`${s.lower[0]}/a/b/f`, past, past);
        const before = snapshot(s.lower[0]);
        const ov = await s.open();
        const events: unknown[] = [];
        ov.on('copyup', (e) => events.push(e));
        await ov.appendFile('/a/b/f', ' + more');
        assert.equal(fs.readFileSync(`${s.upper}/a/b/f`, 'utf8'), 'lower data + more');
        assert.equal(fs.statSync(`${s.upper}/a/b`).mode & 0o7777, 0o750, 'parent mode copied');
        assert.equal(fs.statSync(`${s.upper}/a/b/f`).mode & 0o7777, 0o640, 'mode copied');
        assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.note', `${s.upper}/a/b/f`], { encoding: 'utf8' }), 'kept');
        assert.deepEqual(events, [{ path: '/a/b/f', lowerPath: `${s.lower[0]}/a/b/f`, upperPath: `${s.upper}/a/b/f`, fromLayer: 0 }]);
        assert.equal(snapshot(s.lower[0]), before);
        assert.deepEqual(fs.readdirSync(`${s.work}/work`), [], 'work dir left clean');
      } finally {
        s.cleanup();
      }
    });

    test('copy-up keeps times when only metadata changes (chmod)', async () => {
      const s = makeStack(format, [{ f: 'x' }]);
      try {
        const past = new Date('2021-05-05T00:00:00Z');
        fs.utimesSync(`${s.lower[0]}/f`, past, past);
        const ov = await s.open();
        await ov.chmod('/f', 0o600);
        const st = fs.statSync(`${s.upper}/f`);
        assert.equal(st.mode & 0o7777, 0o600);
        assert.equal(st.mtimeMs, past.getTime());
        assert.equal(fs.statSync(`${s.lower[0]}/f`).mode & 0o777, 0o644);
      } finally {
        s.cleanup();
      }
    });

    test('writeFile create/overwrite/exclusive and truncate', async () => {
      const s = makeStack(format, [{ f: 'lower', dir: null }]);
      try {
        const ov = await s.open();
        await rejects(ov.writeFile('/f', 'x', { create: true, overwrite: false }), 'EEXIST');
        await rejects(ov.writeFile('/new', 'x', { create: false, overwrite: true }), 'ENOENT');
        await rejects(ov.writeFile('/dir', 'x'), 'EISDIR');
        await rejects(ov.writeFile('/missing/f', 'x'), 'ENOENT');
        await rejects(ov.writeFile('/f/x', 'x'), 'ENOTDIR');
        await ov.writeFile('/new', 'made', { create: true, overwrite: false });
        await ov.writeFile('/f', 'replaced');
        await ov.truncate('/f', 3);
        assert.equal((await ov.readFile('/f')).toString(), 'rep');
        assert.equal((await ov.readFile('/new')).toString(), 'made');
        assert.equal(fs.readFileSync(`${s.lower[0]}/f`, 'utf8'), 'lower');
      } finally {
        s.cleanup();
      }
    });

    test('deleting a lower file leaves a whiteout; an upper-only file just goes', async () => {
      const s = makeStack(format, [{ 'd/low': 'l' }], { 'd/up': 'u' });
      try {
        const ov = await s.open();
        await ov.unlink('/d/low');
        await ov.unlink('/d/up');
        assert.deepEqual(await names(ov, '/d'), []);
        assert.ok(isWhiteout(`${s.upper}/d`, 'low', format));
        assert.ok(!fs.existsSync(`${s.upper}/d/up`) && !isWhiteout(`${s.upper}/d`, 'up', format));
        assert.ok(fs.existsSync(`${s.lower[0]}/d/low`));
        await rejects(ov.unlink('/d'), 'EISDIR');
        await rejects(ov.unlink('/d/nothing'), 'ENOENT');
      } finally {
        s.cleanup();
      }
    });

    test('a copied-up file, deleted, becomes a whiteout', async () => {
      const s = makeStack(format, [{ f: 'l' }]);
      try {
        const ov = await s.open();
        await ov.writeFile('/f', 'u');
        await ov.unlink('/f');
        assert.ok(isWhiteout(s.upper, 'f', format));
        await rejects(ov.stat('/f'), 'ENOENT');
      } finally {
        s.cleanup();
      }
    });

    test('rmdir of a merged directory, then mkdir: the new directory is opaque', async () => {
      const s = makeStack(format, [{ 'd/x': 'x' }]);
      try {
        const ov = await s.open();
        await rejects(ov.rmdir('/d'), 'ENOTEMPTY');
        await ov.unlink('/d/x');
        await ov.rmdir('/d');
        assert.ok(isWhiteout(s.upper, 'd', format));
        await ov.mkdir('/d');
        assert.ok(isOpaque(`${s.upper}/d`, format));
        assert.deepEqual(await names(ov, '/d'), []);
        await rejects(ov.mkdir('/d'), 'EEXIST');
      } finally {
        s.cleanup();
      }
    });

    test('rm -r of a lower tree leaves one whiteout', async () => {
      const s = makeStack(format, [{ 't/a/b/c': '1', 't/z': '2' }], { 't/new': 'n' });
      try {
        const ov = await s.open();
        await rejects(ov.rm('/t'), 'EISDIR');
        await ov.rm('/t', { recursive: true });
        await rejects(ov.stat('/t'), 'ENOENT');
        assert.ok(isWhiteout(s.upper, 't', format));
        assert.deepEqual(await names(ov, '/'), []);
      } finally {
        s.cleanup();
      }
    });

    test('mkdir -p through lower directories', async () => {
      const s = makeStack(format, [{ 'a/f': 'x' }]);
      try {
        const ov = await s.open();
        await ov.mkdir('/a/b/c', { recursive: true });
        await ov.mkdir('/a/b/c', { recursive: true });
        assert.equal((await ov.stat('/a/b/c')).type, 'd');
        await rejects(ov.mkdir('/a/f/x', { recursive: true }), 'ENOTDIR');
        await rejects(ov.mkdir('/a/f', { recursive: true }), 'EEXIST');
        await rejects(ov.mkdir('/x/y'), 'ENOENT');
      } finally {
        s.cleanup();
      }
    });

    test('rename of a lower file: copy-up, move, whiteout at the old name', async () => {
      const s = makeStack(format, [{ 'src/f': 'data', dst: null, 'dst/old': 'o' }]);
      try {
        const ov = await s.open();
        await ov.rename('/src/f', '/dst/old');
        assert.equal((await ov.readFile('/dst/old')).toString(), 'data');
        await rejects(ov.stat('/src/f'), 'ENOENT');
        assert.ok(isWhiteout(`${s.upper}/src`, 'f', format));
        // Onto the directory that holds it: ENOTEMPTY, as rename(2) answers (measured on a kernel mount).
        await rejects(ov.rename('/dst/old', '/dst', { overwrite: true }), 'ENOTEMPTY');
        await ov.writeFile('/g', 'g');
        await rejects(ov.rename('/g', '/dst', { overwrite: true }), 'EISDIR');
        await rejects(ov.rename('/g', '/dst/old', { overwrite: false }), 'EEXIST');
      } finally {
        s.cleanup();
      }
    });

    test('rename of a directory that exists in a lower layer ends as mv leaves it', async () => {
      const s = makeStack(format, [{ 'd/a': 'A', 'd/sub/b': 'B', 'd/ln': { link: 'a' } }]);
      try {
        const ov = await s.open();
        await ov.rename('/d', '/e');
        await rejects(ov.stat('/d'), 'ENOENT');
        assert.deepEqual(await names(ov, '/e'), ['a', 'ln', 'sub']);
        assert.equal((await ov.readFile('/e/sub/b')).toString(), 'B');
        assert.equal(await ov.readlink('/e/ln'), 'a');
        assert.ok(isWhiteout(s.upper, 'd', format));
        assert.equal((await ov.stat('/e/a')).layer, 'upper');
      } finally {
        s.cleanup();
      }
    });

    test('rename of a pure upper directory is a plain rename', async () => {
      const s = makeStack(format, [{ other: 'x' }], { 'p/q': 'Q' });
      try {
        const ov = await s.open();
        await ov.rename('/p', '/r');
        assert.equal(fs.readFileSync(`${s.upper}/r/q`, 'utf8'), 'Q');
        assert.ok(!fs.existsSync(`${s.upper}/p`) && !isWhiteout(s.upper, 'p', format));
        await rejects(ov.rename('/r', '/r/inside'), 'EINVAL');
      } finally {
        s.cleanup();
      }
    });

    test('symlink and copy', async () => {
      const s = makeStack(format, [{ 'd/f': 'F' }]);
      try {
        const ov = await s.open();
        await ov.symlink('d/f', '/link');
        assert.equal((await ov.readFile('/link')).toString(), 'F');
        await rejects(ov.symlink('x', '/link'), 'EEXIST');
        await ov.copy('/d', '/d2');
        assert.equal((await ov.readFile('/d2/f')).toString(), 'F');
        await rejects(ov.copy('/d', '/d2', { overwrite: false }), 'EEXIST');
      } finally {
        s.cleanup();
      }
    });

    test('read handles follow the copy-up (the consistency rule)', async () => {
      const s = makeStack(format, [{ f: 'old contents' }]);
      try {
        const ov = await s.open();
        const h = await ov.open('/f');
        assert.equal((await ov.readHandle(h, 0, 3)).toString(), 'old');
        await ov.writeFile('/f', 'new contents');
        assert.equal((await ov.readHandle(h, 0, 3)).toString(), 'new');
        const w = await ov.open('/f', { write: true });
        await ov.writeHandle(w, 0, Buffer.from('NEW'));
        assert.equal((await ov.readHandle(h, 0, 12)).toString(), 'NEW contents');
        await ov.closeHandle(h);
        await ov.closeHandle(w);
        await rejects(ov.readHandle(h, 0, 1), 'EBADF');
      } finally {
        s.cleanup();
      }
    });

    test('a handle reads the upper copy made by an outside writer', async () => {
      const s = makeStack(format, [{ f: 'lower' }]);
      try {
        const ov = await s.open();
        const h = await ov.open('/f');
        fs.writeFileSync(`${s.upper}/f`, 'upper');
        assert.equal((await ov.readHandle(h, 0, 5)).toString(), 'upper');
        await ov.close();
      } finally {
        s.cleanup();
      }
    });

    test('concurrent writes copy a file up once; each final content is one whole write', async () => {
      const s = makeStack(format, [{ f: 'x'.repeat(1 << 20) }]);
      try {
        const ov = await s.open();
        let copyUps = 0;
        ov.on('copyup', () => copyUps++);
        await Promise.all([ov.chmod('/f', 0o600), ov.appendFile('/f', 'a'), ov.appendFile('/f', 'b'), ov.chmod('/f', 0o640)]);
        assert.equal(copyUps, 1);
        assert.equal((await ov.stat('/f')).size, (1 << 20) + 2);
        const writes = Array.from({ length: 8 }, (_, i) => ov.writeFile('/f', String(i).repeat(4096)));
        await Promise.all(writes);
        const final = (await ov.readFile('/f')).toString();
        assert.ok(/^(\d)\1{4095}$/.test(final), 'one complete write');
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('read-only stacks and the work directory', () => {
  test('a stack without upper rejects writes with EROFS', async () => {
    const s = makeStack('kernel', [{ f: 'x' }]);
    try {
      const ov = await Overlay.open({ lower: s.lower });
      assert.ok(ov.readOnly);
      await rejects(ov.writeFile('/f', 'y'), 'EROFS');
      await rejects(ov.mkdir('/d'), 'EROFS');
      await rejects(ov.unlink('/f'), 'EROFS');
      await rejects(ov.rename('/f', '/g'), 'EROFS');
      assert.equal((await ov.readFile('/f')).toString(), 'x');
    } finally {
      s.cleanup();
    }
  });

  test('leftovers of a dead process in the work directory are cleaned at open', async () => {
    const s = makeStack('kernel', [{ f: 'x' }]);
    try {
      fs.mkdirSync(`${s.work}/work`);
      fs.writeFileSync(`${s.work}/work/#ovlws-999999-0-abc`, 'partial');
      await s.open();
      assert.deepEqual(fs.readdirSync(`${s.work}/work`), []);
    } finally {
      s.cleanup();
    }
  });
});

for (const format of FORMATS) {
  describe(`revert and the lower copy (${format} whiteouts)`, () => {
    test('revert drops the upper copy, an added tree, a whiteout or an opaque directory', async () => {
      const s = makeStack(format, [{ f: 'lower f', 'd/x': 'x', g: 'lower g' }]);
      try {
        const ov = await s.open();
        await ov.writeFile('/f', 'changed');
        await ov.mkdir('/added/deep', { recursive: true });
        await ov.unlink('/g');
        await ov.rm('/d', { recursive: true });
        await ov.mkdir('/d');
        assert.equal((await ov.lowerResolve('/f'))?.realPath, `${s.lower[0]}/f`);
        assert.equal(await ov.lowerResolve('/added'), undefined);
        for (const p of ['/f', '/added', '/g', '/d']) await ov.revert(p);
        assert.equal((await ov.readFile('/f')).toString(), 'lower f');
        assert.equal((await ov.readFile('/g')).toString(), 'lower g');
        assert.deepEqual(await names(ov, '/d'), ['x']);
        await rejects(ov.stat('/added'), 'ENOENT');
        assert.deepEqual(await ov.diff(), []);
        await rejects(ov.revert('/'), 'EBUSY');
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('typed lookups: a file operation on what is not a regular file fails before anything changes', () => {
  test('open for writing, truncate, append and writeFile on a FIFO of a lower layer: EINVAL, nothing copied up', async () => {
    const s = makeStack('kernel', [{ d: null }]);
    try {
      execFileSync('mkfifo', [path.join(s.lower[0], 'd/fifo')]);
      const ov = await s.open();
      await assert.rejects(ov.open('/d/fifo', { write: true }), { code: 'EINVAL' });
      await assert.rejects(ov.truncate('/d/fifo', 0), { code: 'EINVAL' });
      await assert.rejects(ov.appendFile('/d/fifo', 'x'), { code: 'EINVAL' });
      await assert.rejects(ov.writeFile('/d/fifo', 'x'), { code: 'EINVAL' });
      await assert.rejects(ov.readFile('/d/fifo'), { code: 'EINVAL' });
      await assert.rejects(ov.open('/d', { write: true }), { code: 'EISDIR' });
      assert.deepEqual(fs.readdirSync(s.upper), [], 'nothing copied up, not even the parent directory');
      await ov.close();
    } finally {
      s.cleanup();
    }
  });
});
