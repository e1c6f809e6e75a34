/**
 * Whiteout formats are modules behind one interface (server/src/overlay/formats): a third
 * format, defined here and registered by this test alone, serves lookup, merged listings,
 * whiteouts, opaque directories, diff, OCI export and import and the watcher without a
 * change anywhere else.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { FileChangeType } from '../../shared/src/protocol';
import { Overlay, registerWhiteoutFormat, resolveStack, whiteoutFormatNames, type Format, type FormatModule } from '../../server/src/overlay';
import { exportLayer, importLayer, readTar } from '../../server/src/overlay/oci';
import { OverlayWatcher } from '../../server/src/watcher';

/**
 * "toy": a whiteout is a symlink to `.toy-whiteout` at the deleted name (it replaces the name,
 * as the kernel's device does); an opaque directory holds a file `.toy-opaque` (a marker
 * inside, as OCI's). Plain names only: enough for a test.
 */
const TARGET = '.toy-whiteout';
const MARKER = '.toy-opaque';

function isToyWhiteout(real: string): boolean {
  try {
    return fs.lstatSync(real).isSymbolicLink() && fs.readlinkSync(real) === TARGET;
  } catch {
    return false;
  }
}

function toyWhiteout(dir: string, name: string, scratch: () => string): void {
  const tmp = scratch();
  fs.symlinkSync(TARGET, tmp);
  fs.renameSync(tmp, path.join(dir, name));
}

class ToyFormat implements Format {
  readonly name = 'toy';
  whitesOut(_dir: unknown, _name: string, st: fs.Stats | undefined, real: string): boolean {
    return st !== undefined && st.isSymbolicLink() && isToyWhiteout(real);
  }
  stopsMerge(_dir: unknown, child: { real: string }): boolean {
    return this.isOpaque(child.real);
  }
  isOpaque(dirReal: string): boolean {
    return fs.existsSync(path.join(dirReal, MARKER));
  }
  entries(dir: { real: string }): (d: fs.Dirent) => string | null | undefined {
    return (d) => (d.name === MARKER ? null : d.isSymbolicLink() && isToyWhiteout(path.join(dir.real, d.name)) ? d.name : undefined);
  }
  hasWhiteout(dir: string, name: string): boolean {
    return isToyWhiteout(path.join(dir, name));
  }
  whiteout(dir: string, name: string, scratch: () => string): void {
    toyWhiteout(dir, name, scratch);
  }
  clearWhiteout(dir: string, name: string): void {
    if (this.hasWhiteout(dir, name)) fs.unlinkSync(path.join(dir, name));
  }
  renameOver(from: string, dir: string, name: string): void {
    fs.renameSync(from, path.join(dir, name));
  }
  mkdirOverWhiteout(dir: string, name: string, mode: number, scratch: () => string): void {
    const tmp = scratch();
    fs.mkdirSync(tmp, { mode });
    this.setOpaque(tmp);
    fs.unlinkSync(path.join(dir, name));
    fs.renameSync(tmp, path.join(dir, name));
  }
  setOpaque(dirReal: string): void {
    fs.writeFileSync(path.join(dirReal, MARKER), '');
  }
  clearInside(dirReal: string): void {
    for (const name of fs.readdirSync(dirReal)) if (name === MARKER || isToyWhiteout(path.join(dirReal, name))) fs.unlinkSync(path.join(dirReal, name));
  }
  classifyEvent(p: string, kind: 'add' | 'change' | 'unlink', real: string): { path: string; kind: 'add' | 'change' | 'unlink' | 'whiteout' | 'opaque' } {
    if (path.posix.basename(p) === MARKER) return { path: path.posix.dirname(p), kind: 'opaque' };
    return { path: p, kind: kind === 'add' && isToyWhiteout(real) ? 'whiteout' : kind };
  }
  fromOciWhiteout(dir: string, name: string, scratch: () => string): void {
    toyWhiteout(dir, name, scratch);
  }
  fromOciOpaque(dirReal: string): void {
    this.setOpaque(dirReal);
  }
}

const toy: FormatModule = {
  name: 'toy',
  description: 'Symlinks to .toy-whiteout and .toy-opaque files (a test format).',
  detect: (d, dir) => d.name === MARKER || (d.isSymbolicLink() && isToyWhiteout(path.join(dir, d.name))),
  create: () => new ToyFormat(),
};

const sorted = async (ov: Overlay, p: string): Promise<string[]> => (await ov.readdir(p)).map((e) => e.name).sort();

/** Merged tree as lines (type, path, content hash or link target). */
async function mergedTree(ov: Overlay): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await sorted(ov, dir)) {
      const p = (dir === '/' ? '' : dir) + '/' + name;
      const st = await ov.lstat(p);
      const extra =
        st.type === 'f'
          ? createHash('sha256')
              .update(await ov.readFile(p))
              .digest('hex')
          : st.type === 'l'
            ? await ov.readlink(p)
            : '';
      out.push(`${st.type} ${p} ${extra}`);
      if (st.type === 'd') await walk(p);
    }
  };
  await walk('/');
  return out;
}

describe('a whiteout format registered by a test alone (toy)', () => {
  let unregister: () => void;
  let dir: string;
  let lower: string[];
  let upper: string;
  let work: string;

  before(() => {
    unregister = registerWhiteoutFormat(toy);
  });
  after(() => unregister());

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-toy-'));
    // bottom: files everywhere; top lower: toy whiteouts of /gone and /d/y, /o opaque with a new file.
    const bottom = path.join(dir, 'l1');
    for (const f of ['a', 'gone', 'd/x', 'd/y', 'o/old', 'keep/k']) {
      fs.mkdirSync(path.dirname(path.join(bottom, f)), { recursive: true });
      fs.writeFileSync(path.join(bottom, f), f);
    }
    const top = path.join(dir, 'l0');
    fs.mkdirSync(path.join(top, 'd'), { recursive: true });
    fs.mkdirSync(path.join(top, 'o'), { recursive: true });
    fs.symlinkSync(TARGET, path.join(top, 'gone'));
    fs.symlinkSync(TARGET, path.join(top, 'd/y'));
    fs.writeFileSync(path.join(top, 'o', MARKER), '');
    fs.writeFileSync(path.join(top, 'o/new'), 'new');
    lower = [top, bottom];
    upper = path.join(dir, 'upper');
    work = path.join(dir, 'work');
    fs.mkdirSync(upper);
    fs.mkdirSync(work);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const open = (): Promise<Overlay> => Overlay.open({ lower, upper, work, whiteouts: 'toy' });

  it('is one more choice, and "auto" recognises its layers', () => {
    assert.deepEqual(whiteoutFormatNames(), ['kernel', 'oci', 'toy']);
    assert.equal(resolveStack({ lower, whiteouts: 'auto' }).whiteouts, 'toy');
    assert.throws(() => resolveStack({ lower, whiteouts: 'fat' }), { code: 'EINVAL', message: /whiteouts must be "kernel", "oci", "toy" or "auto"/ });
  });

  it('lookup and merged listings: whiteouts hide, opaque directories stop the merge, markers are never listed', async () => {
    const ov = await open();
    try {
      assert.deepEqual(await sorted(ov, '/'), ['a', 'd', 'keep', 'o']);
      assert.deepEqual(await sorted(ov, '/d'), ['x']);
      assert.deepEqual(await sorted(ov, '/o'), ['new']);
      await assert.rejects(ov.stat('/gone'), { code: 'ENOENT' });
      await assert.rejects(ov.stat('/d/y'), { code: 'ENOENT' });
      await assert.rejects(ov.stat('/o/old'), { code: 'ENOENT' });
      assert.equal((await ov.readFile('/d/x')).toString(), 'd/x');
    } finally {
      await ov.close();
    }
  });

  it('writes leave toy whiteouts and opaque markers, and a file made over a whiteout replaces it', async () => {
    const ov = await open();
    try {
      await ov.unlink('/a');
      assert.ok(isToyWhiteout(path.join(upper, 'a')), 'unlink of a lower file leaves a toy whiteout');
      assert.deepEqual(await sorted(ov, '/'), ['d', 'keep', 'o']);
      await ov.rm('/keep', { recursive: true });
      await ov.mkdir('/keep');
      assert.ok(fs.existsSync(path.join(upper, 'keep', MARKER)), 'a directory made over a whiteout is opaque');
      assert.deepEqual(await sorted(ov, '/keep'), []);
      await ov.writeFile('/a', 'again');
      assert.ok(fs.lstatSync(path.join(upper, 'a')).isFile());
      assert.equal((await ov.readFile('/a')).toString(), 'again');
      await ov.rename('/d/x', '/moved');
      assert.ok(isToyWhiteout(path.join(upper, 'd/x')));
      assert.deepEqual(await sorted(ov, '/d'), []);
      assert.ok(
        (await ov.diff()).some((c) => c.kind === 'D' && c.path === '/d/x'),
        'diff reads toy whiteouts',
      );
      await ov.revert('/d/x');
      assert.deepEqual(await sorted(ov, '/d'), ['x']);
      assert.deepEqual(
        (await ov.diff()).map((c) => `${c.kind} ${c.path}`),
        ['C /a', 'C /keep', 'D /keep/k', 'A /moved'],
      );
    } finally {
      await ov.close();
    }
  });

  it('exports as an OCI layer and imports back in its own format: the same merged tree', async () => {
    const ov = await open();
    try {
      await ov.unlink('/a');
      await ov.rm('/keep', { recursive: true });
      await ov.mkdir('/keep');
      await ov.writeFile('/keep/fresh', 'f');
      const file = path.join(dir, 'layer.tar');
      await exportLayer(ov, file);
      assert.deepEqual(
        (await readTar(file)).map((e) => e.name),
        ['.wh.a', 'keep/', 'keep/.wh..wh..opq', 'keep/fresh'],
      );
      const imported = path.join(dir, 'imported');
      await importLayer(file, imported, { whiteouts: 'toy' });
      assert.ok(isToyWhiteout(path.join(imported, 'a')));
      assert.ok(fs.existsSync(path.join(imported, 'keep', MARKER)));
      const again = await Overlay.open({ lower: [imported, ...lower], whiteouts: 'toy' });
      assert.deepEqual(await mergedTree(again), await mergedTree(ov));
      await again.close();
    } finally {
      await ov.close();
    }
  });

  it('the watcher reads toy whiteouts written by another process as deletions', async () => {
    const ov = await open();
    const w = new OverlayWatcher(ov, () => undefined, { batchMs: 10 });
    const seen: string[] = [];
    w.on('changes', (cs) => seen.push(...cs.map((c) => `${c.type === FileChangeType.Deleted ? 'D' : c.type} ${c.path}`)));
    try {
      await w.start();
      fs.symlinkSync(TARGET, path.join(upper, 'a')); // as another program using the toy format would
      const deadline = Date.now() + 5000;
      while (!seen.includes('D /a') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.includes('D /a'), `events: ${seen.join(', ')}`);
    } finally {
      await w.close();
      await ov.close();
    }
  });
});
