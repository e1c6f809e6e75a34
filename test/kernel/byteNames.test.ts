/**
 * Names that are not valid UTF-8, against the kernel: the same stack (byte names, a
 * byte-named whiteout and opaque directory, a literal U+F780 name) mounted with
 * `mount -t overlay` and opened with the engine; the merged trees (names as bytes) must
 * be equal, and after the same writes the merged trees and the raw upper directories too.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { nameBytes } from '../../server/src/overlay/names';
import { skipBecause } from '../mocha/skip';
import { isMounted, kernelOverlayUnavailable, mountKernel, unmount, type OverlayDirs } from './shell';

const b = (s: string): Buffer => nameBytes(s); // escaped name → its bytes
const join = (root: string, rel: string): Buffer => Buffer.concat([Buffer.from(root), b(rel)]);

/** Run a shell line with $p = a byte path (setfattr, mknod take names as bytes only from a shell). */
function withPath(script: string, p: Buffer): void {
  const octal = [...p].map((x) => '\\0' + x.toString(8).padStart(3, '0')).join('');
  execFileSync('sh', ['-c', `p="$(printf '%b' '${octal}')"; ${script}`], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** "hex path, type, content or rdev" lines of a tree read by bytes (xattrs left out). */
function dump(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: Buffer, rel: string): void => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      const r = `${rel}/${name.toString('hex')}`;
      if (st.isDirectory()) {
        out.push(`d ${r}`);
        walk(p, r);
      } else if (st.isFile()) out.push(`f ${r} ${fs.readFileSync(p).toString('hex')}`);
      else if (st.isSymbolicLink()) out.push(`l ${r} ${fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex')}`);
      else out.push(`c ${r} ${st.rdev}`);
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

/** The engine's merged tree in dump() form. */
async function dumpEngine(ov: Overlay): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = (await ov.readdir(dir)).sort((x, y) => Buffer.compare(b(x.name), b(y.name)));
    for (const e of entries) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const r = `${rel}/${b(e.name).toString('hex')}`;
      if (e.type === 'd') {
        out.push(`d ${r}`);
        await walk(p, r);
      } else if (e.type === 'f') out.push(`f ${r} ${(await ov.readFile(p)).toString('hex')}`);
      else if (e.type === 'l') out.push(`l ${r} ${b(await ov.readlink(p)).toString('hex')}`);
      else out.push(`c ${r} ${(await ov.lstat(p)).rdev}`);
    }
  };
  await walk('/', '');
  return out;
}

function buildLayers(root: string): void {
  const [l0, l1] = [path.join(root, 'L0'), path.join(root, 'L1')];
  for (const d of [l0, l1, path.join(root, 'U'), path.join(root, 'W'), path.join(root, 'M')]) fs.mkdirSync(d);
  fs.writeFileSync(join(l0, '/f\uF7FFo'), 'ff');
  fs.writeFileSync(join(l0, '/f\uF7FEo'), 'fe');
  fs.writeFileSync(join(l0, '/\uF7EF\uF79E\uF780'), 'literal U+F780');
  fs.mkdirSync(join(l0, '/d\uF780ir'));
  fs.writeFileSync(join(l0, '/d\uF780ir/in\uF7C3'), 'inside');
  fs.symlinkSync(b('f\uF7FFo'), join(l0, '/ln\uF7FF'));
  fs.mkdirSync(join(l1, '/d\uF780ir'));
  fs.writeFileSync(join(l1, '/d\uF780ir/hidden\uF7FF'), 'under an opaque dir');
  fs.mkdirSync(join(l1, '/m\uF7AA'));
  fs.writeFileSync(join(l1, '/m\uF7AA/keep\uF7FF'), 'merged dir');
  fs.writeFileSync(join(l1, '/z\uF7FF'), 'whited out');
  withPath('setfattr -n trusted.overlay.opaque -v y "$p"', join(l0, '/d\uF780ir'));
  withPath('mknod "$p" c 0 0', join(l0, '/z\uF7FF'));
}

test('kernel overlayfs and the engine agree on names that are not UTF-8', async function () {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ovbytes-'));
  const why = kernelOverlayUnavailable(scratch);
  if (why) {
    fs.rmSync(scratch, { recursive: true, force: true });
    skipBecause(this, why);
  }
  const kRoot = path.join(scratch, 'kernel');
  const eRoot = path.join(scratch, 'engine');
  fs.mkdirSync(kRoot);
  buildLayers(kRoot);
  execFileSync('cp', ['-a', kRoot, eRoot]);
  const dirs = (root: string): OverlayDirs => ({
    lower: [path.join(root, 'L0'), path.join(root, 'L1')],
    upper: path.join(root, 'U'),
    work: path.join(root, 'W'),
    merged: path.join(root, 'M'),
  });
  const k = dirs(kRoot);
  const e = dirs(eRoot);
  mountKernel(k);
  const ov = await Overlay.open({ lower: e.lower, upper: e.upper, work: e.work, whiteouts: 'kernel' });
  try {
    assert.deepEqual(await dumpEngine(ov), dump(k.merged), 'merged trees before any write');
    // The same writes: fs calls with byte paths on the mount, the engine with escaped names.
    const ops: [string, (m: string) => void, () => Promise<void>][] = [
      ['write f\\xffo', (m) => fs.writeFileSync(join(m, '/f\uF7FFo'), 'written'), () => ov.writeFile('/f\uF7FFo', 'written')],
      ['append d\\x80ir/in\\xc3', (m) => fs.appendFileSync(join(m, '/d\uF780ir/in\uF7C3'), '+'), () => ov.appendFile('/d\uF780ir/in\uF7C3', '+')],
      ['unlink f\\xfeo', (m) => fs.unlinkSync(join(m, '/f\uF7FEo')), () => ov.unlink('/f\uF7FEo')],
      ['rename U+F780 → g\\xff', (m) => fs.renameSync(join(m, '/\uF7EF\uF79E\uF780'), join(m, '/g\uF7FF')), () => ov.rename('/\uF7EF\uF79E\uF780', '/g\uF7FF')],
      ['unlink m\\xaa/keep\\xff', (m) => fs.unlinkSync(join(m, '/m\uF7AA/keep\uF7FF')), () => ov.unlink('/m\uF7AA/keep\uF7FF')],
      ['mkdir n\\xff over nothing', (m) => fs.mkdirSync(join(m, '/n\uF7FF')), () => ov.mkdir('/n\uF7FF')],
      ['create z\\xff over its whiteout', (m) => fs.writeFileSync(join(m, '/z\uF7FF'), 'back'), () => ov.writeFile('/z\uF7FF', 'back')],
      ['rename ln\\xff', (m) => fs.renameSync(join(m, '/ln\uF7FF'), join(m, '/ln2')), () => ov.rename('/ln\uF7FF', '/ln2')],
    ];
    for (const [what, kernelOp, engineOp] of ops) {
      kernelOp(k.merged);
      await engineOp();
      assert.deepEqual(await dumpEngine(ov), dump(k.merged), `merged trees after ${what}`);
    }
    unmount(k.merged);
    assert.deepEqual(dump(e.upper), dump(k.upper), 'raw upper directories');
  } finally {
    await ov.close();
    if (isMounted(k.merged)) unmount(k.merged);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}).timeout(60_000);
