import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { Overlay, parseDockerInspect, parseDockerLayerDir, parseMountinfoLine, parseMountOptions, resolveStack } from '../../server/src/overlay';
import { makeStack, rejects } from './helpers';

describe('parsing stacks', () => {
  test('mount option strings, with \\: escapes and data-only layers', () => {
    assert.deepEqual(parseMountOptions('lowerdir=/a:/b\\:c::/data,upperdir=/u,workdir=/w,userxattr'), {
      lower: ['/a', '/b:c'],
      upper: '/u',
      work: '/w',
      userxattr: true,
    });
    assert.deepEqual(parseMountOptions('lowerdir+=/x,lowerdir+=/y,upperdir=/u,workdir=/w'), { lower: ['/x', '/y'], upper: '/u', work: '/w' });
    assert.throws(() => parseMountOptions('upperdir=/u'), /no lowerdir/);
  });

  test('a mountinfo line, with \\072 and \\040 escapes', () => {
    const line = '123 45 0:67 / /mnt/my\\040merged rw,relatime shared:1 - overlay overlay rw,lowerdir=/l\\0721:/l2,upperdir=/up\\040per,workdir=/work';
    assert.deepEqual(parseMountinfoLine(line), { lower: ['/l:1', '/l2'], upper: '/up per', work: '/work', merged: '/mnt/my merged' });
    assert.throws(() => parseMountinfoLine('1 2 3:4 / /x rw - ext4 /dev/sda rw'), /not an overlay mount/);
    // What Linux 6.18 shows for lowerdir=/tmp/a\:b:/tmp/l 2 (a colon escaped in the option, then the backslash by mountinfo).
    const kernel = '49 27 0:41 / /tmp/m rw,relatime - overlay overlay rw,lowerdir=/tmp/a\\134:b:/tmp/l\\0402,upperdir=/tmp/u,workdir=/tmp/w,uuid=on';
    assert.deepEqual(parseMountinfoLine(kernel), { lower: ['/tmp/a:b', '/tmp/l 2'], upper: '/tmp/u', work: '/tmp/w', merged: '/tmp/m' });
    // Data-only layers after `::` are not looked up.
    assert.deepEqual(parseMountinfoLine('1 2 0:9 / /m rw - overlay overlay rw,lowerdir=/a:/b::/data').lower, ['/a', '/b']);
  });

  test('a Docker overlay2 layer directory and docker inspect JSON', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-docker-'));
    try {
      for (const id of ['base', 'mid', 'ctr']) fs.mkdirSync(path.join(root, id, 'diff'), { recursive: true });
      fs.mkdirSync(path.join(root, 'l'));
      fs.symlinkSync('../base/diff', path.join(root, 'l', 'BASE'));
      fs.symlinkSync('../mid/diff', path.join(root, 'l', 'MID'));
      fs.writeFileSync(path.join(root, 'mid', 'lower'), 'l/BASE');
      fs.writeFileSync(path.join(root, 'ctr', 'lower'), 'l/MID:l/BASE');
      fs.mkdirSync(path.join(root, 'ctr', 'work'));
      assert.deepEqual(parseDockerLayerDir(path.join(root, 'ctr')), {
        lower: [path.join(root, 'mid/diff'), path.join(root, 'base/diff')],
        upper: path.join(root, 'ctr/diff'),
        work: path.join(root, 'ctr/work'),
      });
      assert.deepEqual(parseDockerLayerDir(path.join(root, 'mid')), { lower: [path.join(root, 'mid/diff'), path.join(root, 'base/diff')] });
      assert.deepEqual(
        parseDockerInspect(
          JSON.stringify([{ GraphDriver: { Name: 'overlay2', Data: { LowerDir: '/a:/b', UpperDir: '/u', WorkDir: '/w', MergedDir: '/nonexistent' } } }]),
        ),
        { lower: ['/a', '/b'], upper: '/u', work: '/w' },
      );
      assert.throws(() => parseDockerInspect('{}'), /GraphDriver/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('validating stacks', () => {
  test('bad stacks are refused with a message naming the problem', async () => {
    const s = makeStack('kernel', [{ a: 'a' }, { b: 'b' }]);
    try {
      const ok = { lower: s.lower, upper: s.upper, work: s.work };
      assert.throws(() => resolveStack({ ...ok, lower: [...s.lower, '/nonexistent/layer'] }), /lower layer 2 .* does not exist/);
      assert.throws(() => resolveStack({ ...ok, lower: [s.lower[0], s.lower[0]] }), /same directory is used twice/);
      assert.throws(() => resolveStack({ ...ok, upper: s.lower[0] }), /same directory is used twice/);
      fs.mkdirSync(`${s.lower[0]}/inner`);
      assert.throws(() => resolveStack({ ...ok, upper: `${s.lower[0]}/inner` }), /overlap/);
      assert.throws(() => resolveStack({ ...ok, lower: [`${s.upper}`, s.lower[1]], upper: s.lower[1] }), /twice|overlap/);
      fs.writeFileSync(`${s.work}/junk`, 'x');
      assert.throws(() => resolveStack(ok), /work directory is not empty/);
      fs.unlinkSync(`${s.work}/junk`);
      assert.throws(() => resolveStack({ ...ok, work: undefined }), /needs a work directory/);
      assert.throws(() => resolveStack({ lower: [] }), /at least one lower/);
      assert.throws(() => resolveStack({ ...ok, whiteouts: 'bogus' as never }), /whiteouts must be/);
      const shm = fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(s.upper).dev ? fs.mkdtempSync('/dev/shm/ovlws-') : undefined;
      if (shm) {
        try {
          assert.throws(() => resolveStack({ ...ok, work: shm }), /not on the same filesystem/);
        } finally {
          fs.rmSync(shm, { recursive: true });
        }
      }
      await rejects(Overlay.open({ ...ok, lower: ['/nonexistent'] }), 'ENOENT');
      assert.equal(resolveStack(ok).whiteouts, 'kernel');
    } finally {
      s.cleanup();
    }
  });

  test('whiteout format auto-detection', () => {
    const oci = makeStack('oci', [{ 'd/x': { whiteout: true }, 'd/y': 'y' }, { 'd/x': 'x' }]);
    const kernel = makeStack('kernel', [{ 'd/x': { whiteout: true } }, { 'd/x': 'x' }]);
    const plain = makeStack('kernel', [{ a: 'a' }]);
    try {
      assert.equal(resolveStack({ lower: oci.lower }).whiteouts, 'oci');
      assert.equal(resolveStack({ lower: kernel.lower }).whiteouts, 'kernel');
      assert.equal(resolveStack({ lower: plain.lower, whiteouts: 'auto' }).whiteouts, 'kernel');
    } finally {
      oci.cleanup();
      kernel.cleanup();
      plain.cleanup();
    }
  });
});
