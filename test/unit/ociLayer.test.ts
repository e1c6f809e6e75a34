import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { exportLayer, exportLayerDir, importLayer, readTar } from '../../server/src/overlay/oci';
import { FORMATS, makeStack, type TestStack } from './helpers';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Merged tree as lines: type, path, mode, content hash or link target, user xattrs. */
async function mergedTree(ov: Overlay): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await ov.readdir(dir)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const st = await ov.lstat(p);
      let extra = '';
      if (st.type === 'f')
        extra = createHash('sha256')
          .update(await ov.readFile(p))
          .digest('hex');
      if (st.type === 'l') extra = '-> ' + (await ov.readlink(p));
      out.push(`${st.type} ${p} ${st.type === 'l' ? '' : st.mode.toString(8)} ${extra}`);
      if (st.type === 'd') await walk(p);
    }
  };
  await walk('/');
  return out;
}

/** A raw ustar header + data, for archives our writer would never produce. */
function rawEntry(name: string, type: string, data = '', linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(Buffer.byteLength(data).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const d = Buffer.from(data);
  return Buffer.concat([h, d, Buffer.alloc((512 - (d.length % 512)) % 512)]);
}

const LONG = 'deep/' + 'x'.repeat(60) + '/' + 'y'.repeat(60) + '/' + 'z'.repeat(110) + '.txt';

for (const format of FORMATS) {
  describe(`OCI layer export/import (${format})`, () => {
    const build = async (): Promise<{ s: TestStack; ov: Overlay }> => {
      const s = makeStack(format, [{ 'etc/conf': 'c', 'etc/old': 'o', 'var/cache/a': 'a', 'var/cache/b/c': 'c', 'usr/bin/tool': 'tool', keep: 'k' }]);
      const ov = await s.open();
      await ov.writeFile('/etc/conf', 'changed');
      await ov.unlink('/etc/old');
      await ov.rm('/var/cache', { recursive: true });
      await ov.mkdir('/var/cache');
      await ov.writeFile('/var/cache/fresh', 'f');
      await ov.symlink('../etc/conf', '/usr/conf-link');
      await ov.mkdir('/' + path.posix.dirname(LONG), { recursive: true });
      await ov.writeFile('/' + LONG, 'long');
      await ov.chmod('/usr/bin/tool', 0o4755);
      await ov.writeFile('/usr/bin/one', 'same inode');
      fs.linkSync(path.join(s.upper, 'usr/bin/one'), path.join(s.upper, 'usr/bin/two'));
      execFileSync('setfattr', ['-n', 'user.note', '-v', 'hello', path.join(s.upper, 'etc/conf')]);
      return { s, ov };
    };

    test('export writes OCI whiteouts (opaque first, whiteouts before siblings), hard links, PAX names and xattrs', async () => {
      const { s, ov } = await build();
      try {
        const file = path.join(s.dir, 'layer.tar');
        const r = await exportLayer(ov, file);
        const raw = fs.readFileSync(file);
        assert.equal(r.diffId, 'sha256:' + createHash('sha256').update(raw).digest('hex'));
        assert.equal(r.digest, r.diffId, 'not compressed: the blob is the tar');
        assert.equal(r.size, raw.length);
        const entries = await readTar(file);
        const names = entries.map((e) => e.name);
        assert.ok(!names.some((n) => n.startsWith('/') || n.startsWith('./')));
        const cache = names.indexOf('var/cache/');
        assert.deepEqual(names.slice(cache, cache + 3), ['var/cache/', 'var/cache/.wh..wh..opq', 'var/cache/fresh']);
        const etc = names.indexOf('etc/');
        assert.deepEqual(names.slice(etc, etc + 3), ['etc/', 'etc/.wh.old', 'etc/conf']);
        const byName = new Map(entries.map((e) => [e.name, e]));
        assert.deepEqual(
          byName.get('etc/conf')?.xattrs.map(([k, v]) => `${k}=${v.toString()}`),
          ['user.note=hello'],
        );
        assert.equal(byName.get('etc/conf')?.data.toString(), 'changed');
        assert.equal(byName.get('usr/bin/two')?.type, '1');
        assert.equal(byName.get('usr/bin/two')?.linkname, 'usr/bin/one');
        assert.equal(byName.get('usr/bin/tool')?.mode, 0o4755);
        assert.equal(byName.get('usr/conf-link')?.linkname, '../etc/conf');
        assert.equal(byName.get(LONG)?.data.toString(), 'long');
        assert.equal(entries.filter((e) => e.name.includes('.wh.')).length, 2);
        // GNU tar reads it too (a reader nobody here wrote).
        const listed = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
        assert.ok(listed.includes(LONG) && listed.includes('etc/.wh.old'));
      } finally {
        await ov.close();
        s.cleanup();
      }
    });

    for (const into of FORMATS) {
      test(`import into ${into} format: the imported layer over the same lowers gives the same merged tree`, async () => {
        const { s, ov } = await build();
        try {
          const file = path.join(s.dir, 'layer.tar.gz');
          await exportLayer(ov, file);
          assert.equal(fs.readFileSync(file)[0], 0x1f); // gzip by name
          const imp = path.join(s.dir, 'imported');
          const r = cli(['import-layer', file, imp, '--whiteouts', into]);
          assert.equal(r.code, 0, r.err);
          if (into === format) {
            // Lowers in the original format, and the imported layer in the same format.
            const again = await Overlay.open({ lower: [imp, ...s.lower], whiteouts: format });
            assert.deepEqual(await mergedTree(again), await mergedTree(ov));
            await again.close();
          }
          // Either way: the imported dir, exported again, is the same changeset.
          const back = path.join(s.dir, 'back.tar');
          await exportLayerDir(imp, back, { whiteouts: into });
          const strip = async (f: string): Promise<string[]> =>
            (await readTar(f)).map(
              (e) =>
                `${e.name} ${e.type} ${e.mode.toString(8)} ${e.linkname} ${e.data.toString('base64')} ${e.xattrs.map(([k, v]) => k + '=' + v.toString()).join(',')}`,
            );
          assert.deepEqual(await strip(back), await strip(file));
          assert.equal(fs.statSync(path.join(imp, 'usr/bin/one')).ino, fs.statSync(path.join(imp, 'usr/bin/two')).ino);
          assert.equal(fs.statSync(path.join(imp, 'usr/bin/tool')).mode & 0o7777, 0o4755);
        } finally {
          await ov.close();
          s.cleanup();
        }
      });
    }

    test('overlayws export: exit 0 and a tarball; a read-only stack is EROFS', async () => {
      const s = makeStack(format, [{ a: 'a' }], { b: 'b' });
      try {
        const file = path.join(s.dir, 'x.tar');
        const r = cli(['--lower', s.lower[0], '--upper', s.upper, '--work', s.work, '--whiteouts', format, 'export', file]);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(
          (await readTar(file)).map((e) => e.name),
          ['b'],
        );
        const ro = cli(['--lower', s.lower[0], 'export', file]);
        assert.equal(ro.code, 1);
        assert.match(ro.err, /^overlayws: EROFS: /);
        assert.equal(cli(['--lower', s.lower[0], '--upper', s.upper, '--work', s.work, 'export']).code, 2);
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('OCI layer export: other on-disk forms', () => {
  test('kernel xattr whiteouts (overlay.opaque="x") become .wh. entries; fifos and devices keep their type', async () => {
    const s = makeStack('kernel', [{ 'd/gone': 'g', 'd/kept': 'k' }], { 'd/new': 'n' });
    try {
      const wh = path.join(s.upper, 'd/gone');
      fs.writeFileSync(wh, '');
      execFileSync('setfattr', ['-n', 'trusted.overlay.whiteout', '-v', 'y', wh]);
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'x', path.join(s.upper, 'd')]);
      execFileSync('mkfifo', [path.join(s.upper, 'd/fifo')]);
      execFileSync('mknod', [path.join(s.upper, 'd/null'), 'c', '1', '3']);
      const ov = await s.open();
      assert.deepEqual((await ov.readdir('/d')).map((e) => e.name).sort(), ['fifo', 'kept', 'new', 'null']);
      const file = path.join(s.dir, 'l.tar');
      await exportLayer(ov, file);
      await ov.close();
      const entries = await readTar(file);
      assert.deepEqual(
        entries.map((e) => `${e.name} ${e.type}`),
        ['d/ 5', 'd/.wh.gone 0', 'd/fifo 6', 'd/new 0', 'd/null 3'],
      );
      const nul = entries.find((e) => e.name === 'd/null');
      assert.deepEqual([nul?.devmajor, nul?.devminor], [1, 3]);
      const imp = path.join(s.dir, 'imp');
      await importLayer(file, imp, { whiteouts: 'kernel' });
      assert.ok(fs.lstatSync(path.join(imp, 'd/fifo')).isFIFO());
      assert.equal(fs.lstatSync(path.join(imp, 'd/null')).rdev, fs.lstatSync('/dev/null').rdev);
      const w = fs.lstatSync(path.join(imp, 'd/gone'));
      assert.ok(w.isCharacterDevice() && w.rdev === 0);
    } finally {
      s.cleanup();
    }
  });
});

describe('import-layer refuses entries outside DIR', () => {
  const cases: [string, Buffer[]][] = [
    ['a .. path', [rawEntry('../evil', '0', 'x')]],
    ['a deeper .. path', [rawEntry('a/', '5'), rawEntry('a/../../evil', '0', 'x')]],
    ['a path through a symlink', [rawEntry('lnk', '2', '', '..'), rawEntry('lnk/evil', '0', 'x')]],
    ['a hard link to outside', [rawEntry('h', '1', '', '../evil-target')]],
  ];
  for (const [what, parts] of cases) {
    test(what, async () => {
      const s = makeStack('oci', [{}]);
      try {
        const file = path.join(s.dir, 'evil.tar');
        fs.writeFileSync(file, Buffer.concat([...parts, Buffer.alloc(1024)]));
        fs.writeFileSync(path.join(s.dir, 'evil-target'), 'secret');
        const dir = path.join(s.dir, 'inner', 'layer');
        const r = cli(['import-layer', file, dir, '--whiteouts', 'oci']);
        assert.equal(r.code, 1, r.err);
        assert.match(r.err, /^overlayws: EACCES: refusing entry/);
        assert.ok(!fs.existsSync(path.join(s.dir, 'inner', 'evil')));
        assert.ok(!fs.existsSync(path.join(s.dir, 'evil')));
        await assert.rejects(importLayer(file, dir, { whiteouts: 'kernel' }), { code: 'EACCES' });
      } finally {
        s.cleanup();
      }
    });
  }
  test('import-layer usage: two arguments, a known format', () => {
    assert.equal(cli(['import-layer', 'x.tar']).code, 2);
    assert.equal(cli(['import-layer', 'x.tar', 'd', '--whiteouts', 'auto']).code, 2);
  });
});

describe('overlayws diff in docker diff form (overlay2 upper, kernel whiteouts)', () => {
  test('nested adds, deletes and an opaque directory', () => {
    const T0 = new Date('2001-02-03T04:05:06Z');
    const s = makeStack('kernel', [{ 'a/b/c/f': 'f', 'a/b/keep': 'k', 'o/old1': '1', 'o/sub/old2': '2', 'x/y': 'y', top: 't' }], {
      'a/b/keep': { whiteout: true },
      'a/b/c/new': 'n', // copied-up a/b/c with a new file; a/b with a whiteout
      'n1/n2/f': 'f', // a new tree
      o: { opaque: true },
      'o/old1': 'again',
      'o/fresh': 'fr', // rm -r /o; mkdir /o; two files
      x: { whiteout: true }, // rm -r /x
    });
    try {
      // Lower directories are old; the upper /a was copied up with its times, the rest changed now.
      for (const d of ['', 'a', 'a/b', 'a/b/c', 'o', 'o/sub', 'x']) fs.utimesSync(path.join(s.lower[0], d), T0, T0);
      fs.utimesSync(path.join(s.upper, 'a'), T0, T0);
      // docker diff on a kernel with redirect_dir (moby's naive ChangesDirs), worked out by hand:
      //  directories compare mode, owner and rdev only (not mtime or size), and one with a change
      //  inside is C when it is not A or C itself     → C /a, /a/b, /a/b/c
      //  /a/b/keep char 0/0                            → D; /a/b/c/new not in lower → A
      //  /n1, /n1/n2, /n1/n2/f not in lower            → A
      //  /o opaque: the same mode, changes inside      → C; /o/fresh → A; /o/old1 differs → C;
      //  /o/sub, which the opaque /o hides             → D
      //  /x char 0/0                                   → D (the root is never listed)
      const expected = [
        'C /a',
        'C /a/b',
        'C /a/b/c',
        'A /a/b/c/new',
        'D /a/b/keep',
        'A /n1',
        'A /n1/n2',
        'A /n1/n2/f',
        'C /o',
        'A /o/fresh',
        'C /o/old1',
        'D /o/sub',
        'D /x',
      ];
      const r = cli(['--lower', s.lower[0], '--upper', s.upper, '--work', s.work, '--whiteouts', 'kernel', 'diff']);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(r.out.trim().split('\n'), expected);
    } finally {
      s.cleanup();
    }
  });
});
