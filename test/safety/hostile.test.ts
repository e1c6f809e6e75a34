/**
 * Hostile layers: symlinks out of the stack (absolute, ../../..), loops, names with
 * newlines or invalid UTF-8, very long names, FIFOs and device nodes, an 8 GiB sparse
 * file, a mode-000 directory (readable here: the suite runs as root; unreadable.test.ts
 * runs the engine and the server as nobody). The engine walks, reads and writes everything; canaries
 * outside never change, never leak into an answer, and every realPath stays in a layer.
 * Names that are not UTF-8 are reachable under their own bytes (U+F780–U+F7FF escapes,
 * server/src/overlay/names.ts): two that a lossy decode made one stay two.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'mocha';
import assert from 'node:assert/strict';
import { Overlay } from '../../server/src/overlay';
import { Canaries, figure, isInside, tempDir, treeHash } from './helpers';

let dir: string;
let canaries: Canaries;
let l0: string;
let l1: string;
let upper: string;
let work: string;
const SPARSE = 8 * 1024 ** 3;
/** Names that are not UTF-8 ("f\xffo" and "f\xfeo" were both "f\uFFFDo" as strings), their escaped form and content. */
const BYTE_NAMES: [() => string, Buffer, string, string][] = [
  [() => l0, Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff, 0xfe, 0x80]), '/bad-\uF7FF\uF7FE\uF780', 'invalid utf8 name\n'],
  [() => l1, Buffer.from([0x66, 0xff, 0x6f]), '/f\uF7FFo', 'ff\n'],
  [() => l1, Buffer.from([0x66, 0xfe, 0x6f]), '/f\uF7FEo', 'fe!\n'],
  [() => l1, Buffer.from('\uF780'), '/\uF7EF\uF79E\uF780', 'literal U+F780\n'],
];

before(() => {
  dir = tempDir('hostile');
  canaries = new Canaries(dir);
  l0 = path.join(dir, 'stack/l0');
  l1 = path.join(dir, 'stack/l1');
  upper = path.join(dir, 'stack/upper');
  work = path.join(dir, 'stack/work');
  for (const d of [l0, l1, upper, work]) fs.mkdirSync(d, { recursive: true });
  fs.symlinkSync(canaries.files[0], path.join(l0, 'abs'));
  fs.symlinkSync('../../../../../../../../../../' + path.relative('/', canaries.files[1]), path.join(l0, 'rel'));
  fs.symlinkSync(canaries.dir, path.join(l0, 'absdir'));
  fs.mkdirSync(path.join(l0, 'deep/er'), { recursive: true });
  fs.symlinkSync('../../../canary', path.join(l0, 'deep/er/updir'));
  fs.symlinkSync('../../../../../canary/passwd', path.join(l1, 'deep/er/upfile'.replace('deep/er/', '')));
  fs.symlinkSync('b', path.join(l0, 'a'));
  fs.symlinkSync('a', path.join(l0, 'b'));
  fs.symlinkSync('self', path.join(l0, 'self'));
  fs.symlinkSync('.', path.join(l0, 'dot'));
  fs.writeFileSync(path.join(l0, 'new\nline'), 'newline name\n');
  for (const [layer, name, , content] of BYTE_NAMES) fs.writeFileSync(Buffer.concat([Buffer.from(layer() + '/'), name]), content);
  fs.mkdirSync(Buffer.concat([Buffer.from(l1 + '/dir-'), Buffer.of(0xc3)]));
  fs.writeFileSync(Buffer.concat([Buffer.from(l1 + '/dir-'), Buffer.of(0xc3), Buffer.from('/in-'), Buffer.of(0xe2, 0x82)]), 'inside a byte-named dir\n');
  fs.symlinkSync(
    Buffer.concat([Buffer.from('../../../../../../../../../..'), Buffer.from(canaries.dir), Buffer.from('/passwd')]),
    Buffer.concat([Buffer.from(l1 + '/esc-'), Buffer.of(0xff)]),
  );
  fs.writeFileSync(path.join(l0, 'n'.repeat(255)), 'long name\n');
  let deep = l1;
  for (let i = 0; i < 15; i++) deep = path.join(deep, 'd'.repeat(250));
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, 'leaf'), 'deep leaf\n');
  execFileSync('mkfifo', [path.join(l0, 'fifo')]);
  execFileSync('mknod', [path.join(l0, 'null'), 'c', '1', '3']);
  execFileSync('mknod', [path.join(l0, 'zero'), 'c', '1', '5']);
  fs.writeFileSync(path.join(l0, 'sparse.img'), '');
  fs.truncateSync(path.join(l0, 'sparse.img'), SPARSE);
  fs.mkdirSync(path.join(l0, 'locked'));
  fs.writeFileSync(path.join(l0, 'locked/inside'), 'locked\n');
  fs.chmodSync(path.join(l0, 'locked'), 0);
  fs.writeFileSync(path.join(l1, 'plain.txt'), 'plain\n');
});

after(() => {
  try {
    fs.chmodSync(path.join(l0, 'locked'), 0o755);
  } catch {
    /* gone */
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} hung for ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

test('walking, reading and writing a hostile stack never touches or leaks anything outside', async () => {
  const skipSparse = (p: string): boolean => p.endsWith('sparse.img');
  const lowerBefore = [treeHash(l0, skipSparse), treeHash(l1)];
  const ov = await Overlay.open({ lower: [l0, l1], upper, work, whiteouts: 'kernel' });
  const layers = [l0, l1, upper];
  const figures = { entries: 0, reads: 0, refused: {} as Record<string, number>, writes: 0 };
  const note = (err: unknown): void => {
    const c = (err as { code?: string }).code ?? String(err);
    figures.refused[c] = (figures.refused[c] ?? 0) + 1;
  };
  const check = (what: string, v: unknown): void => {
    assert.ok(!canaries.leaked(v), `${what} leaked canary bytes`);
    const rp = (v as { realPath?: string } | undefined)?.realPath;
    if (rp) assert.ok(isInside(rp, layers), `${what}: realPath outside the layers: ${rp}`);
  };
  const all: string[] = [];
  const walk = async (p: string): Promise<void> => {
    let entries;
    try {
      entries = await within(ov.readdir(p), 5000, `readdir ${p}`);
    } catch (err) {
      if (String(err).includes('hung')) throw err;
      note(err);
      return;
    }
    for (const e of entries) {
      const child = (p === '/' ? '' : p) + '/' + e.name;
      all.push(child);
      figures.entries++;
      for (const op of ['lstat', 'stat', 'resolve', 'readlink'] as const) {
        try {
          check(`${op} ${child}`, await within<unknown>((ov[op] as (x: string) => Promise<unknown>).call(ov, child), 5000, `${op} ${JSON.stringify(child)}`));
        } catch (err) {
          if (String(err).includes('hung')) throw err;
          note(err);
        }
      }
      if (e.type !== 'd' || e.name === 'sparse.img') {
        if (e.name !== 'sparse.img') {
          try {
            check(`readFile ${child}`, await within(ov.readFile(child), 5000, `readFile ${JSON.stringify(child)}`));
            figures.reads++;
          } catch (err) {
            if (String(err).includes('hung')) throw err;
            note(err);
          }
        } else {
          const head = await within(ov.read(child, SPARSE - 16, 64), 5000, 'read sparse tail');
          assert.equal(head.length, 16);
        }
      }
      if (e.type === 'd') await walk(child);
    }
  };
  await walk('/');
  // Every name that is not UTF-8 is listed once, escaped, and reads as its own file.
  const nonUtf8 = all.filter((p) => /[\uF780-\uF7FF]/.test(p)).sort();
  assert.deepEqual(nonUtf8, [...BYTE_NAMES.map((b) => b[2]), '/dir-\uF7C3', '/dir-\uF7C3/in-\uF7E2\uF782', '/esc-\uF7FF'].sort());
  assert.ok(!all.some((p) => p.includes('\ufffd')), 'no lossy U+FFFD name listed');
  for (const [, , p, content] of BYTE_NAMES) assert.equal((await ov.readFile(p)).toString(), content, p);
  assert.equal((await ov.readFile('/dir-\uF7C3/in-\uF7E2\uF782')).toString(), 'inside a byte-named dir\n');
  // Writes through every name, the escaping symlinks included.
  for (const p of all) {
    if (p.endsWith('sparse.img')) continue;
    for (const [op, fn] of [
      ['writeFile', () => ov.writeFile(p, 'overwritten\n')],
      ['appendFile', () => ov.appendFile(p, 'more\n')],
      ['truncate', () => ov.truncate(p, 1)],
      ['chmod', () => ov.chmod(p, 0o600)],
      ['utimes', () => ov.utimes(p, 0, 0)],
      ['open-write', async () => ov.closeHandle(await ov.open(p, { write: true } as never))],
    ] as [string, () => Promise<unknown>][]) {
      try {
        await within(fn(), 5000, `${op} ${JSON.stringify(p)}`);
        figures.writes++;
      } catch (err) {
        if (String(err).includes('hung')) throw err;
        note(err);
      }
    }
  }
  for (const p of ['/abs', '/rel', '/absdir/secret.txt', '/absdir', '/deep/er/updir/passwd', '/upfile', '/a', '/self']) {
    try {
      await ov.rm(p, { recursive: true });
    } catch (err) {
      note(err);
    }
    try {
      await ov.rename('/plain.txt', p);
      await ov.rename(p, '/plain.txt');
    } catch (err) {
      note(err);
    }
  }
  await ov.close();
  assert.deepEqual(canaries.changed(), [], 'a canary outside the stack changed');
  assert.deepEqual([treeHash(l0, skipSparse), treeHash(l1)], lowerBefore, 'a lower layer changed');
  // Everything written is inside the upper layer, as regular names.
  const stray = fs.readdirSync(path.join(dir, 'stack')).sort();
  assert.deepEqual(stray, ['l0', 'l1', 'upper', 'work']);
  // The writes above landed in the upper layer under the very same bytes.
  const upperNames = fs.readdirSync(upper, { encoding: 'buffer' });
  for (const [, name] of BYTE_NAMES)
    assert.ok(
      upperNames.some((n) => n.equals(name)),
      `upper holds ${name.toString('hex')}`,
    );
  assert.ok(fs.existsSync(Buffer.concat([Buffer.from(upper + '/dir-'), Buffer.of(0xc3), Buffer.from('/in-'), Buffer.of(0xe2, 0x82)])));
  figure(`hostile walk ${JSON.stringify(figures)} nonUtf8Names=${nonUtf8.length}`);
}).timeout(180_000);

test('an 8 GiB sparse lower file: stat is instant, chmod copy-up keeps the holes', async () => {
  const up2 = path.join(dir, 'stack2/upper');
  const work2 = path.join(dir, 'stack2/work');
  fs.mkdirSync(up2, { recursive: true });
  fs.mkdirSync(work2, { recursive: true });
  const ov = await Overlay.open({ lower: [l0], upper: up2, work: work2, whiteouts: 'kernel' });
  const st = await ov.stat('/sparse.img');
  assert.equal(st.size, SPARSE);
  const t0 = Date.now();
  await ov.chmod('/sparse.img', 0o600);
  const ms = Date.now() - t0;
  const real = fs.statSync(path.join(up2, 'sparse.img'));
  assert.equal(real.size, SPARSE);
  figure(`sparse 8 GiB chmod copy-up: ${ms} ms, upper copy allocates ${real.blocks * 512} bytes`);
  assert.ok(real.blocks * 512 < 64 * 1024 ** 2, `copy-up filled ${real.blocks * 512} bytes of disk for a sparse file`);
  await ov.close();
}).timeout(120_000);

test('FIFOs and device nodes are never opened for reading', async () => {
  const ov = await Overlay.open({ lower: [l0], upper: path.join(dir, 'stack/upper'), work: path.join(dir, 'stack/work'), whiteouts: 'kernel' });
  for (const p of ['/fifo', '/zero', '/null']) {
    const started = Date.now();
    await assert.rejects(within(ov.readFile(p), 5000, `readFile ${p}`), (err: { code?: string; message: string }) => !err.message.includes('hung'));
    assert.ok(Date.now() - started < 2000);
  }
  await ov.close();
}).timeout(30_000);
