import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { FORMATS, makeStack } from './helpers';

for (const format of FORMATS) {
  describe(`changes in docker diff form (${format})`, () => {
    test('A, C and D with parents marked C', async () => {
      const s = makeStack(format, [{ 'etc/conf': 'c', 'etc/old': 'o', 'var/log/x': 'x', keep: 'k' }]);
      try {
        const ov = await s.open();
        await ov.writeFile('/etc/conf', 'changed');
        await ov.unlink('/etc/old');
        await ov.writeFile('/var/log/new', 'n');
        await ov.mkdir('/opt/tool', { recursive: true });
        const lines = (await ov.diff()).map((c) => `${c.kind} ${c.path}`);
        assert.deepEqual(lines, ['C /etc', 'C /etc/conf', 'D /etc/old', 'A /opt', 'A /opt/tool', 'C /var', 'C /var/log', 'A /var/log/new']);
      } finally {
        s.cleanup();
      }
    });

    test('a directory replaced as a whole (opaque) is C, with a D for each lower entry it hides and an A for each new one', async () => {
      const s = makeStack(format, [{ 'd/a': 'a', 'd/sub/deep': 'x', 'd/keep': 'k' }]);
      try {
        const ov = await s.open();
        await ov.rm('/d', { recursive: true });
        await ov.mkdir('/d');
        await ov.writeFile('/d/only', 'o');
        await ov.writeFile('/d/keep', 'new keep');
        const changes = await ov.diff();
        assert.deepEqual(
          changes.map((c) => `${c.kind} ${c.path}`),
          ['C /d', 'D /d/a', 'C /d/keep', 'A /d/only', 'D /d/sub'],
        );
        assert.deepEqual(
          changes.filter((c) => c.kind === 'D').map((c) => c.hiddenBy),
          ['/d', '/d'],
          'hidden by the opaque directory, not whited out',
        );
        // Revert of one hidden entry brings back a copy of its lower version; the directory stays opaque.
        await ov.revert('/d/a');
        await ov.revert('/d/sub');
        assert.equal((await ov.readFile('/d/a')).toString(), 'a');
        assert.equal((await ov.readFile('/d/sub/deep')).toString(), 'x');
        assert.deepEqual(
          (await ov.diff()).map((c) => `${c.kind} ${c.path}`),
          ['C /d', 'C /d/keep', 'A /d/only'],
          'the copies have the lower stat: no change',
        );
      } finally {
        s.cleanup();
      }
    });

    test('every ancestor of a deep change is C; a file replacing a directory is C without D for its entries', async () => {
      const s = makeStack(format, [{ 'usr/share/zoneinfo/Europe/Paris': 'p', 'usr/share/zoneinfo/UTC': 'u', 'usr/bin/x': 'x', 'opt/dir/f': 'f' }]);
      try {
        const ov = await s.open();
        await ov.unlink('/usr/share/zoneinfo/Europe/Paris');
        await ov.rm('/opt/dir', { recursive: true });
        await ov.writeFile('/opt/dir', 'now a file');
        const changes = await ov.diff();
        assert.deepEqual(
          changes.map((c) => `${c.kind} ${c.path}`),
          ['C /opt', 'C /opt/dir', 'C /usr', 'C /usr/share', 'C /usr/share/zoneinfo', 'C /usr/share/zoneinfo/Europe', 'D /usr/share/zoneinfo/Europe/Paris'],
        );
        assert.equal(changes.find((c) => c.kind === 'D')?.hiddenBy, undefined, 'a whiteout hides it');
      } finally {
        s.cleanup();
      }
    });

    test('a copy-up that changes nothing docker compares is no change; chmod, a new mtime or size is C', async () => {
      const s = makeStack(format, [{ 'a/same': 's', 'a/mode': 'm', 'a/time': 't' }]);
      try {
        const ov = await s.open();
        const lowerFile = (n: string) => path.join(s.lower[0], 'a', n);
        // the same file copied up by hand with its times: moby compares mode, owner, rdev, size and mtime
        fs.mkdirSync(path.join(s.upper, 'a'));
        const dirSt = fs.statSync(path.join(s.lower[0], 'a'));
        fs.chmodSync(path.join(s.upper, 'a'), dirSt.mode & 0o7777);
        fs.copyFileSync(lowerFile('same'), path.join(s.upper, 'a/same'));
        execFileSync('touch', ['-r', lowerFile('same'), path.join(s.upper, 'a/same')]); // nanoseconds too
        await ov.chmod('/a/mode', 0o600);
        await ov.utimes('/a/time', Date.UTC(2000, 1, 1), Date.UTC(2000, 1, 1));
        assert.deepEqual(
          (await ov.diff()).map((c) => `${c.kind} ${c.path}`),
          ['C /a', 'C /a/mode', 'C /a/time'],
        );
      } finally {
        s.cleanup();
      }
    });

    test('an empty upper has no changes', async () => {
      const s = makeStack(format, [{ a: 'a' }]);
      try {
        assert.deepEqual(await (await s.open()).diff(), []);
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('changes in docker diff form: whiteouts the format reads', () => {
  test('kernel xattr whiteouts (a zero-size file with overlay.whiteout in an overlay.opaque="x" directory) are D, as lookup and export read them', async () => {
    const s = makeStack('kernel', [{ 'd/gone': 'g', 'd/kept': 'k' }], { 'd/new': 'n' });
    try {
      const wh = path.join(s.upper, 'd/gone');
      fs.writeFileSync(wh, '');
      execFileSync('setfattr', ['-n', 'trusted.overlay.whiteout', '-v', 'y', wh]);
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'x', path.join(s.upper, 'd')]);
      const ov = await s.open();
      assert.deepEqual((await ov.readdir('/d')).map((e) => e.name).sort(), ['kept', 'new']);
      assert.deepEqual(
        (await ov.diff()).map((c) => `${c.kind} ${c.path}`),
        ['C /d', 'D /d/gone', 'A /d/new'],
      );
      await ov.close();
    } finally {
      s.cleanup();
    }
  });
});

describe('changes of a big upper', () => {
  test('other requests are answered while the walk runs (it yields to the event loop)', async function () {
    this.timeout(60_000); // 10 000 files made, then walked
    const s = makeStack('kernel', [{ keep: 'k' }]);
    try {
      // 10 000 upper files in 10 directories: far more than YIELD_AFTER_MS (8 ms) of lstat work.
      for (let d = 0; d < 10; d++) {
        fs.mkdirSync(path.join(s.upper, `d${d}`));
        for (let f = 0; f < 1000; f++) fs.writeFileSync(path.join(s.upper, `d${d}`, `f${f}`), '');
      }
      const ov = await s.open();
      let settled = false;
      const walk = ov.diff().then((changes) => {
        settled = true;
        return changes;
      });
      // A stat asked after the walk started is answered before the walk ends.
      const st = await ov.stat('/keep');
      assert.equal(st.size, 1);
      assert.equal(settled, false, 'the diff ran to its end before a stat asked after it was answered');
      const changes = await walk;
      assert.equal(changes.filter((c) => c.kind === 'A').length, 10 * 1000 + 10);
    } finally {
      s.cleanup();
    }
  });
});
