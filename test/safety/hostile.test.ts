/**
 * Hostile layers: symlinks out of the stack (absolute, ../../..), loops, names with
 * newlines or invalid UTF-8, very long names, FIFOs and device nodes, an 8 GiB sparse
 * file, an unreadable directory. The engine walks, reads and writes everything; canaries
 * outside never change, never leak into an answer, and every realPath stays in a layer.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
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
  fs.writeFileSync(Buffer.from(path.join(l0, 'bad-')).length ? Buffer.concat([Buffer.from(l0 + '/bad-'), Buffer.from([0xff, 0xfe, 0x80])]) : '', 'invalid utf8 name\n');
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
  try { fs.chmodSync(path.join(l0, 'locked'), 0o755); } catch { /* gone */ }
  fs.rmSync(dir, { recursive: true, force: true });
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`${what} hung for ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}

test('walking, reading and writing a hostile stack never touches or leaks anything outside', { timeout: 180_000 }, async () => {
  const skipSparse = (p: string): boolean => p.endsWith('sparse.img');
  const lowerBefore = [treeHash(l0, skipSparse), treeHash(l1)];
  const ov = await Overlay.open({ lower: [l0, l1], upper, work, whiteouts: 'kernel' });
  const layers = [l0, l1, upper];
  const figures = { entries: 0, reads: 0, refused: {} as Record<string, number>, writes: 0 };
  const note = (err: unknown): void => { const c = (err as { code?: string }).code ?? String(err); figures.refused[c] = (figures.refused[c] ?? 0) + 1; };
  const check = (what: string, v: unknown): void => {
    assert.ok(!canaries.leaked(v), `${what} leaked canary bytes`);
    const rp = (v as { realPath?: string } | undefined)?.realPath;
    if (rp) assert.ok(isInside(rp, layers), `${what}: realPath outside the layers: ${rp}`);
  };
  const all: string[] = [];
  const walk = async (p: string): Promise<void> => {
    let entries;
    try { entries = await within(ov.readdir(p), 5000, `readdir ${p}`); } catch (err) { if (String(err).includes('hung')) throw err; note(err); return; }
    for (const e of entries) {
      const child = (p === '/' ? '' : p) + '/' + e.name;
      all.push(child);
      figures.entries++;
      for (const op of ['lstat', 'stat', 'resolve', 'readlink'] as const) {
        try { check(`${op} ${child}`, await within<unknown>((ov[op] as (x: string) => Promise<unknown>).call(ov, child), 5000, `${op} ${JSON.stringify(child)}`)); } catch (err) { if (String(err).includes('hung')) throw err; note(err); }
      }
      if (e.type !== 'd' || e.name === 'sparse.img') {
        if (e.name !== 'sparse.img') {
          try { check(`readFile ${child}`, await within(ov.readFile(child), 5000, `readFile ${JSON.stringify(child)}`)); figures.reads++; } catch (err) { if (String(err).includes('hung')) throw err; note(err); }
        } else {
          const head = await within(ov.read(child, SPARSE - 16, 64), 5000, 'read sparse tail');
          assert.equal(head.length, 16);
        }
      }
      if (e.type === 'd') await walk(child);
    }
  };
  await walk('/');
  // Writes through every name, the escaping symlinks included.
  for (const p of all) {
    if (p.endsWith('sparse.img')) continue;
    for (const [op, fn] of [
      ['writeFile', () => ov.writeFile(p, 'overwritten\n')], ['appendFile', () => ov.appendFile(p, 'more\n')], ['truncate', () => ov.truncate(p, 1)],
      ['chmod', () => ov.chmod(p, 0o600)], ['utimes', () => ov.utimes(p, 0, 0)], ['open-write', async () => ov.closeHandle(await ov.open(p, { write: true } as never))],
    ] as [string, () => Promise<unknown>][]) {
      try { await within(fn(), 5000, `${op} ${JSON.stringify(p)}`); figures.writes++; } catch (err) { if (String(err).includes('hung')) throw err; note(err); }
    }
  }
  for (const p of ['/abs', '/rel', '/absdir/secret.txt', '/absdir', '/deep/er/updir/passwd', '/upfile', '/a', '/self']) {
    try { await ov.rm(p, { recursive: true }); } catch (err) { note(err); }
    try { await ov.rename('/plain.txt', p); await ov.rename(p, '/plain.txt'); } catch (err) { note(err); }
  }
  await ov.close();
  assert.deepEqual(canaries.changed(), [], 'a canary outside the stack changed');
  assert.deepEqual([treeHash(l0, skipSparse), treeHash(l1)], lowerBefore, 'a lower layer changed');
  // Everything written is inside the upper layer, as regular names.
  const stray = fs.readdirSync(path.join(dir, 'stack')).sort();
  assert.deepEqual(stray, ['l0', 'l1', 'upper', 'work']);
  const nonUtf8 = all.filter((p) => p.includes('\ufffd'));
  figure(`hostile walk ${JSON.stringify(figures)} nonUtf8Names=${JSON.stringify(nonUtf8)}`);
});

test('an 8 GiB sparse lower file: stat is instant, chmod copy-up keeps the holes', { timeout: 120_000 }, async () => {
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
});

test('FIFOs and device nodes are never opened for reading', { timeout: 30_000 }, async () => {
  const ov = await Overlay.open({ lower: [l0], upper: path.join(dir, 'stack/upper'), work: path.join(dir, 'stack/work'), whiteouts: 'kernel' });
  for (const p of ['/fifo', '/zero', '/null']) {
    const started = Date.now();
    await assert.rejects(within(ov.readFile(p), 5000, `readFile ${p}`), (err: { code?: string; message: string }) => !err.message.includes('hung'));
    assert.ok(Date.now() - started < 2000);
  }
  await ov.close();
});
