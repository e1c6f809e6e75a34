/** The engine's compact lstat (overlay/lstat.ts) answers as fs.lstatSync does, for every kind of entry. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'mocha';
import { layerLstat, lstatOrUndefined, typeOf } from '../../server/src/overlay/lstat';

const TESTS = ['isFile', 'isDirectory', 'isSymbolicLink', 'isCharacterDevice', 'isBlockDevice', 'isFIFO', 'isSocket'] as const;
const FIELDS = ['dev', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'ino', 'size', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const;

describe('compact lstat of layer entries', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-lstat-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('every field and type test equals fs.lstatSync: file, sparse file, directory, symlink, FIFO, character device, socket', () => {
    fs.writeFileSync(path.join(dir, 'file'), 'some bytes\n', { mode: 0o640 });
    fs.writeFileSync(path.join(dir, 'sparse'), '');
    fs.truncateSync(path.join(dir, 'sparse'), 1 << 20);
    fs.mkdirSync(path.join(dir, 'dir'));
    fs.symlinkSync('file', path.join(dir, 'link'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    execFileSync('mknod', [path.join(dir, 'null'), 'c', '1', '3']);
    execFileSync('python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path.join(dir, 'sock'))})`]);
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const want = fs.lstatSync(p);
      for (const got of [layerLstat(p), lstatOrUndefined(p)]) {
        assert.ok(got, name);
        for (const f of FIELDS) assert.equal(got[f], want[f], `${name}: ${f}`);
        for (const t of TESTS) assert.equal(got[t](), want[t](), `${name}: ${t}()`);
        assert.equal(typeOf(got), typeOf(want), name);
      }
    }
    assert.ok(layerLstat(path.join(dir, 'sparse')).blocks * 512 < 1 << 20, 'a sparse file shows fewer blocks than its size');
  });

  test('a missing name is undefined (through a file too); layerLstat throws ENOENT', () => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    assert.equal(lstatOrUndefined(path.join(dir, 'none')), undefined);
    assert.equal(lstatOrUndefined(path.join(dir, 'file', 'below')), undefined);
    assert.throws(() => layerLstat(path.join(dir, 'none')), { code: 'ENOENT' });
  });
});
