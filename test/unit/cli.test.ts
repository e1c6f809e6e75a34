import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { makeStack } from './helpers';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');

function run(args: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('overlayws CLI', () => {
  test('reads: ls sorted bytewise with types, cat, stat, tree, resolve', () => {
    const s = makeStack('kernel', [{ 'd/b': 'bee', 'd/B': 'Bee', 'd/a': null, 'd/l': { link: 'b' } }]);
    try {
      const stack = ['--lower', s.lower.join(':'), '--upper', s.upper, '--work', s.work];
      assert.equal(run([...stack, 'ls', '/d']).out, 'f B\nd a\nf b\nl l\n');
      assert.equal(run([...stack, 'cat', '/d/b']).out, 'bee');
      const st = JSON.parse(run([...stack, 'stat', '/d/b']).out);
      assert.deepEqual({ type: st.type, size: st.size, mode: st.mode, layer: st.layer }, { type: 'f', size: 3, mode: 0o644, layer: 0 });
      assert.equal(typeof st.mtimeMs, 'number');
      const tree = run([...stack, 'tree'])
        .out.trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        tree.map((t) => t.path),
        ['/d', '/d/B', '/d/a', '/d/b', '/d/l'],
      );
      assert.equal(tree[3].sha256, createHash('sha256').update('bee').digest('hex'));
      assert.deepEqual(tree[4], { path: '/d/l', type: 'l', target: 'b' });
      assert.equal(JSON.parse(run([...stack, 'resolve', '/d/b']).out).realPath, `${s.lower[0]}/d/b`);
    } finally {
      s.cleanup();
    }
  });

  test('writes from stdin, mv -T, ln -s, chmod, rm, diff; errors exit 1 with one line; usage exits 2', () => {
    const s = makeStack('kernel', [{ 'd/f': 'lower' }]);
    try {
      const stack = ['--lower', s.lower[0], '--upper', s.upper, '--work', s.work, '--whiteouts', 'kernel'];
      assert.equal(run([...stack, 'write', '/d/f'], 'new').code, 0);
      assert.equal(run([...stack, 'append', '/d/f'], '+').code, 0);
      assert.equal(run([...stack, 'cat', '/d/f']).out, 'new+');
      assert.equal(fs.readFileSync(`${s.lower[0]}/d/f`, 'utf8'), 'lower');
      assert.equal(run([...stack, 'mkdir', '-p', '/x/y']).code, 0);
      assert.equal(run([...stack, 'mv', '/d/f', '/x/y/g']).code, 0);
      assert.equal(run([...stack, 'ln', '-s', 'g', '/x/y/l']).code, 0);
      assert.equal(run([...stack, 'chmod', '600', '/x/y/g']).code, 0);
      assert.equal(JSON.parse(run([...stack, 'stat', '/x/y/g']).out).mode, 0o600);
      assert.equal(run([...stack, 'truncate', '/x/y/g', '1']).code, 0);
      assert.equal(run([...stack, 'cat', '/x/y/l']).out, 'n');
      assert.equal(run([...stack, 'diff']).out, 'C /d\nD /d/f\nA /x\nA /x/y\nA /x/y/g\nA /x/y/l\n');
      assert.deepEqual(
        run([...stack, 'diff', '--json', '/d'])
          .out.trim()
          .split('\n')
          .map((l) => JSON.parse(l) as unknown),
        [
          { kind: 'C', path: '/d', type: 'd', lowerLayer: 0 },
          { kind: 'D', path: '/d/f', lowerLayer: 0 },
        ],
      );
      const e = run([...stack, 'rmdir', '/x']);
      assert.equal(e.code, 1);
      assert.equal(e.err, "overlayws: ENOTEMPTY: directory not empty, '/x'\n");
      assert.equal(run([...stack, 'rm', '-r', '/x']).code, 0);
      assert.equal(run([...stack, 'cat', '/x']).err, "overlayws: ENOENT: no such file or directory, '/x'\n");
      assert.equal(run([...stack, 'bogus']).code, 2);
      assert.equal(run(['ls', '/']).code, 2);
      assert.equal(run([...stack, 'chmod', 'rwx', '/d']).code, 2);
      const ro = run(['--lower', s.lower[0], 'write', '/z'], 'x');
      assert.equal(ro.code, 1);
      assert.match(ro.err, /^overlayws: EROFS: /);
      assert.equal(run(['--mount-opts', `lowerdir=${s.lower[0]},upperdir=${s.upper},workdir=${s.work}`, 'ls', '/']).out, 'd d\n');
    } finally {
      s.cleanup();
    }
  });
});
