/**
 * Names that are not valid UTF-8 (Linux names are bytes): listed distinctly, read,
 * written, copied up, whited out, renamed, copied and diffed under their own bytes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { decodeName } from '../../server/src/overlay/names';
import { exportLayerDir, importLayer, readTar } from '../../server/src/overlay/oci';
import { FORMATS, makeStack } from './helpers';

/** A byte path under `root`: parts are strings (UTF-8) or byte arrays. */
function bp(root: string, ...parts: (string | number[])[]): Buffer {
  return Buffer.concat([Buffer.from(root), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))]);
}

/** Run a shell line with $1 = a byte path (tools that take names as bytes: setfattr, mknod, getfattr). */
function sh(script: string, p: Buffer): string {
  // A byte path as an argument: printf %b of its octal escapes inside the shell.
  const octal = [...p].map((b) => '\\0' + b.toString(8).padStart(3, '0')).join('');
  return execFileSync('sh', ['-c', `p="$(printf '%b' '${octal}')"; ${script}`], { encoding: 'utf8' });
}

const FF = [0x66, 0xff, 0x6f]; // "f\xffo"
const FE = [0x66, 0xfe, 0x6f]; // "f\xfeo": both were "f\uFFFDo" as JS strings
const DIR = [0x64, 0x80, 0x69, 0x72]; // "d\x80ir"
const IN = [0x69, 0x6e, 0xc3]; // "in\xc3"
const LITERAL = [0xef, 0x9e, 0x80]; // U+F780 itself, valid UTF-8
const N = { ff: 'f\uF7FFo', fe: 'f\uF7FEo', dir: 'd\uF780ir', in: 'in\uF7C3', literal: '\uF7EF\uF79E\uF780', z: 'z\uF7FF', link: 'ln\uF7FF', hid: 'h\uF7FF' };

function upperNames(dir: string): Buffer[] {
  return fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
}

/** Names (hex bytes), types, modes, contents and link targets of a tree, read by bytes. */
function byteSnapshot(root: Buffer | string): string {
  const out: string[] = [];
  const walk = (dir: Buffer, rel: string): void => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      const r = `${rel}/${name.toString('hex')}`;
      if (st.isDirectory()) {
        out.push(`d ${r} ${st.mode}`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.push(`l ${r} ${fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex')}`);
      else if (st.isFile()) out.push(`f ${r} ${st.mode} ${fs.readFileSync(p).toString('hex')}`);
      else out.push(`${st.mode} ${r} ${st.rdev}`);
    }
  };
  walk(Buffer.from(root), '');
  return out.join('\n');
}

const has = (list: Buffer[], name: number[]): boolean => list.some((b) => b.equals(Buffer.from(name)));

for (const format of FORMATS) {
  describe(`names that are not UTF-8 (${format} whiteouts)`, () => {
    /** l0 over l1: distinct byte names, a byte-named dir (opaque over l1's) with a byte-named file, a literal U+F780 name, a byte symlink, a whiteout of a byte name. */
    function stack(): ReturnType<typeof makeStack> {
      const s = makeStack(format, [{}, {}]);
      const [l0, l1] = s.lower;
      fs.writeFileSync(bp(l0, '/', FF), 'ff content');
      fs.writeFileSync(bp(l0, '/', FE), 'fe content!');
      fs.mkdirSync(bp(l0, '/', DIR));
      fs.writeFileSync(bp(l0, '/', DIR, '/', IN), 'inside');
      fs.writeFileSync(bp(l0, '/', LITERAL), 'literal');
      fs.symlinkSync(Buffer.from(FF), bp(l0, '/ln', [0xff]));
      fs.mkdirSync(bp(l1, '/', DIR));
      fs.writeFileSync(bp(l1, '/', DIR, '/', [0x68, 0xff]), 'hidden by the opaque dir above');
      fs.writeFileSync(bp(l1, '/z', [0xff]), 'whited out above');
      if (format === 'oci') {
        fs.writeFileSync(bp(l0, '/', DIR, '/.wh..wh..opq'), '');
        fs.writeFileSync(bp(l0, '/.wh.z', [0xff]), '');
      } else {
        sh('setfattr -n trusted.overlay.opaque -v y "$p"', bp(l0, '/', DIR));
        sh('mknod "$p" c 0 0', bp(l0, '/z', [0xff]));
      }
      sh('setfattr -n user.note -v kept "$p"', bp(l0, '/', DIR));
      return s;
    }

    test('listing shows distinct names; each stats and reads as its own file; lookups honour byte-named whiteouts and opaque dirs', async () => {
      const s = stack();
      try {
        const ov = await s.open();
        const root = (await ov.readdir('/')).map((e) => e.name).sort();
        assert.deepEqual(root, [N.ff, N.fe, N.dir, N.link, N.literal].sort());
        assert.equal((await ov.readFile('/' + N.ff)).toString(), 'ff content');
        assert.equal((await ov.readFile('/' + N.fe)).toString(), 'fe content!');
        assert.equal((await ov.readFile('/' + N.literal)).toString(), 'literal');
        assert.equal((await ov.stat('/' + N.fe)).size, 11);
        assert.deepEqual(
          (await ov.readdir('/' + N.dir)).map((e) => e.name),
          [N.in],
          'opaque: the lower h\\xff is hidden',
        );
        assert.equal((await ov.readFile(`/${N.dir}/${N.in}`)).toString(), 'inside');
        assert.equal(await ov.readlink('/' + N.link), N.ff);
        assert.equal((await ov.readFile('/' + N.link)).toString(), 'ff content', 'a byte symlink target resolves');
        await assert.rejects(ov.stat('/' + N.z), { code: 'ENOENT' });
        await assert.rejects(ov.stat('/f\uFFFDo'), { code: 'ENOENT' }, 'the lossy spelling names nothing');
        assert.equal((await ov.resolve('/' + N.ff)).realPath, `${s.lower[0]}/${N.ff}`);
        assert.equal(decodeName(fs.readFileSync(bp(s.lower[0], '/', FF)).subarray(0, 0)), '');
        await ov.close();
      } finally {
        s.cleanup();
      }
    });

    test('writes copy up under the same bytes; delete whites out the right name; rename, copy, mkdir, symlink and diff', async () => {
      const s = stack();
      try {
        const before = s.lower.map(byteSnapshot);
        const ov = await s.open();
        await ov.writeFile('/' + N.ff, 'written');
        assert.ok(has(upperNames(s.upper), FF), 'upper has f\\xffo');
        assert.equal(fs.readFileSync(bp(s.upper, '/', FF), 'utf8'), 'written');
        assert.equal((await ov.readFile('/' + N.fe)).toString(), 'fe content!', 'the other name is untouched');

        await ov.appendFile(`/${N.dir}/${N.in}`, '+');
        assert.equal(fs.readFileSync(bp(s.upper, '/', DIR, '/', IN), 'utf8'), 'inside+', 'parent dir copied up under its bytes');
        assert.equal(sh('getfattr --only-values -n user.note "$p"', bp(s.upper, '/', DIR)), 'kept', 'xattrs of a byte-named dir are copied up');

        await ov.unlink('/' + N.fe);
        if (format === 'oci') assert.ok(fs.existsSync(bp(s.upper, '/.wh.', FE)));
        else {
          const st = fs.lstatSync(bp(s.upper, '/', FE));
          assert.ok(st.isCharacterDevice() && st.rdev === 0);
        }
        assert.ok(!(await ov.readdir('/')).some((e) => e.name === N.fe));
        assert.equal((await ov.readFile('/' + N.ff)).toString(), 'written');

        await ov.rename('/' + N.literal, '/g\uF7FF');
        assert.ok(has(upperNames(s.upper), [0x67, 0xff]));
        assert.equal((await ov.readFile('/g\uF7FF')).toString(), 'literal');
        await assert.rejects(ov.stat('/' + N.literal), { code: 'ENOENT' });
        if (format === 'kernel') assert.ok(fs.lstatSync(bp(s.upper, '/', LITERAL)).isCharacterDevice(), 'whiteout under the literal bytes EF 9E 80');

        // A directory with lower parts moves entry by entry (EXDEV in the kernel, mv then copies).
        await ov.rename('/' + N.dir, '/e\uF781');
        assert.deepEqual(
          (await ov.readdir('/e\uF781')).map((e) => e.name),
          [N.in],
        );
        assert.equal((await ov.readFile(`/e\uF781/${N.in}`)).toString(), 'inside+');
        assert.ok(fs.existsSync(bp(s.upper, '/e', [0x81], '/', IN)));

        await ov.copy('/e\uF781', '/c\uF7AA');
        assert.equal((await ov.readFile(`/c\uF7AA/${N.in}`)).toString(), 'inside+');
        await assert.rejects(ov.rmdir('/c\uF7AA'), { code: 'ENOTEMPTY' });
        await ov.rename('/' + N.link, '/l2');
        assert.ok(fs.readlinkSync(`${s.upper}/l2`, { encoding: 'buffer' }).equals(Buffer.from(FF)), 'symlink copied up with its byte target');
        await ov.copy('/l2', '/l3');
        assert.ok(fs.readlinkSync(`${s.upper}/l3`, { encoding: 'buffer' }).equals(Buffer.from(FF)), 'a copied symlink keeps its byte target');
        assert.equal((await ov.readFile('/l3')).toString(), 'written');

        await ov.mkdir('/m\uF7FF');
        assert.ok(fs.statSync(bp(s.upper, '/m', [0xff])).isDirectory());
        await ov.symlink('t\uF7FE', '/nl');
        assert.ok(fs.readlinkSync(`${s.upper}/nl`, { encoding: 'buffer' }).equals(Buffer.from([0x74, 0xfe])));
        assert.equal(await ov.readlink('/nl'), 't\uF7FE');

        const diff = (await ov.diff()).map((c) => `${c.kind} ${c.path}`);
        for (const c of [
          `D /${N.link}`,
          'A /l2',
          `C /${N.ff}`,
          `D /${N.fe}`,
          `D /${N.literal}`,
          'A /g\uF7FF',
          `D /${N.dir}`,
          'A /e\uF781',
          `A /e\uF781/${N.in}`,
          'A /c\uF7AA',
          'A /m\uF7FF',
        ]) {
          assert.ok(diff.includes(c), `diff has ${c}: ${JSON.stringify(diff)}`);
        }
        await ov.rm('/c\uF7AA', { recursive: true });
        await assert.rejects(ov.stat('/c\uF7AA'), { code: 'ENOENT' });
        await ov.revert('/' + N.ff);
        assert.equal((await ov.readFile('/' + N.ff)).toString(), 'ff content');
        await ov.close();
        assert.deepEqual(s.lower.map(byteSnapshot), before, 'lower layers unchanged');
        assert.deepEqual(fs.readdirSync(`${s.work}/work`), [], 'work dir left clean');
      } finally {
        s.cleanup();
      }
    });

    test('open handles, truncate, chmod and utimes reach byte-named files', async () => {
      const s = stack();
      try {
        const ov = await s.open();
        const h = await ov.open('/' + N.fe, { write: true });
        await ov.writeHandle(h, 0, Buffer.from('FE'));
        assert.equal((await ov.readHandle(h, 0, 4)).toString(), 'FE c');
        await ov.closeHandle(h);
        await ov.truncate('/' + N.ff, 2);
        await ov.chmod('/' + N.ff, 0o600);
        await ov.utimes('/' + N.ff, 0, 86_400_000);
        const st = fs.statSync(bp(s.upper, '/', FF));
        assert.deepEqual([st.size, st.mode & 0o777, st.mtimeMs], [2, 0o600, 86_400_000]);
        assert.equal(fs.readFileSync(bp(s.upper, '/', FE), 'utf8'), 'FE content!');
        await ov.close();
      } finally {
        s.cleanup();
      }
    });

    test('overlayws ls prints escaped names that cat, write and diff take back', () => {
      const s = stack();
      try {
        const bin = path.resolve(__dirname, '../../../bin/overlayws.js');
        const run = (args: string[], input?: string): string => {
          const r = spawnSync(process.execPath, [bin, '--lower', s.lower.join(':'), '--upper', s.upper, '--work', s.work, '--whiteouts', format, ...args], {
            input,
            encoding: 'utf8',
          });
          assert.equal(r.status, 0, r.stderr);
          return r.stdout;
        };
        const listed = run(['ls', '/'])
          .trim()
          .split('\n')
          .map((l) => l.slice(2));
        assert.deepEqual(listed, [N.dir, N.fe, N.ff, N.link, N.literal], 'in byte order: 64 80 .. < 66 fe .. < 66 ff .. < 6c .. < ef 9e 80');
        assert.equal(run(['cat', '/' + listed[1]]), 'fe content!');
        run(['write', '/' + listed[2]], 'from the CLI');
        assert.equal(fs.readFileSync(bp(s.upper, '/', FF), 'utf8'), 'from the CLI');
        assert.equal(run(['diff']), `C /${N.ff}\n`);
      } finally {
        s.cleanup();
      }
    });

    test('export writes the raw bytes (GNU tar extracts them); import brings them back', async () => {
      const s = stack();
      try {
        const ov = await s.open();
        await ov.writeFile('/' + N.ff, 'written');
        await ov.unlink('/' + N.fe);
        await ov.writeFile(`/${N.dir}/${'x'.repeat(120)}\uF7FF`, 'long');
        await ov.symlink(N.fe, '/sl');
        await ov.close();
        const tarFile = path.join(s.dir, 'layer.tar');
        await exportLayerDir(s.upper, tarFile, { whiteouts: format });
        const names = (await readTar(tarFile)).map((e) => e.name).sort();
        assert.deepEqual(names, [N.dir + '/', `${N.dir}/${'x'.repeat(120)}\uF7FF`, `.wh.${N.fe}`, N.ff, 'sl'].sort());
        const out = path.join(s.dir, 'gnutar');
        fs.mkdirSync(out);
        execFileSync('tar', ['-xf', tarFile, '-C', out]);
        assert.equal(fs.readFileSync(bp(out, '/', FF), 'utf8'), 'written');
        assert.ok(fs.existsSync(bp(out, '/.wh.', FE)));
        assert.equal(fs.readFileSync(bp(out, '/', DIR, '/', 'x'.repeat(120), [0xff]), 'utf8'), 'long', 'long name via a PAX path record of raw bytes');
        assert.ok(fs.readlinkSync(`${out}/sl`, { encoding: 'buffer' }).equals(Buffer.from(FE)));
        const back = path.join(s.dir, 'imported');
        await importLayer(tarFile, back, { whiteouts: format });
        assert.equal(fs.readFileSync(bp(back, '/', FF), 'utf8'), 'written');
        if (format === 'kernel') assert.ok(fs.lstatSync(bp(back, '/', FE)).isCharacterDevice());
        else assert.ok(fs.existsSync(bp(back, '/.wh.', FE)));
        assert.ok(fs.readlinkSync(`${back}/sl`, { encoding: 'buffer' }).equals(Buffer.from(FE)));
        const ov2 = await Overlay.open({ lower: [back, ...s.lower], whiteouts: format });
        assert.deepEqual((await ov2.readdir('/')).map((e) => e.name).sort(), [N.ff, N.dir, N.link, N.literal, 'sl'].sort());
        await ov2.close();
      } finally {
        s.cleanup();
      }
    });
  });
}
