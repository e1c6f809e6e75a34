/**
 * Layer import streams: tar, gzip and zstd blobs from files or any byte stream, with bounded
 * memory (a child process's peak RSS while it imports a layer several times larger), the event
 * loop free meanwhile, and hostile entries (absolute names, `..`, hard links out) refused
 * before anything outside the target is written.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { exportLayer, importLayer, readTar, TarWriter } from '../../server/src/overlay/oci';
import { makeLayer } from '../bench/layerGen';
import { skipBecause } from '../mocha/skip';
import { makeStack } from './helpers';

const ZSTD = spawnSync('zstd', ['--version']).status === 0;
const CHILD = path.join(__dirname, '../bench/importLayerChild.js');

/** Merged tree as lines (type, path, mode, content hash or link target). */
async function mergedTree(ov: Overlay): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await ov.readdir(dir)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const st = await ov.lstat(p);
      const extra =
        st.type === 'f'
          ? createHash('sha256')
              .update(await ov.readFile(p))
              .digest('hex')
          : st.type === 'l'
            ? await ov.readlink(p)
            : '';
      out.push(`${st.type} ${p} ${st.mode.toString(8)} ${extra}`);
      if (st.type === 'd') await walk(p);
    }
  };
  await walk('/');
  return out;
}

describe('layer import: compressed blobs and streams', () => {
  const build = async (): Promise<{ dir: string; ov: Overlay; tar: string; cleanup: () => void }> => {
    const s = makeStack('kernel', [{ 'etc/conf': 'c', 'etc/old': 'o', 'usr/bin/tool': 'tool', keep: 'k' }]);
    const ov = await s.open();
    await ov.writeFile('/etc/conf', 'changed');
    await ov.unlink('/etc/old');
    await ov.rm('/usr', { recursive: true });
    await ov.mkdir('/usr');
    await ov.writeFile('/usr/new', 'n');
    await ov.symlink('/etc/conf', '/abs-link');
    const tar = path.join(s.dir, 'layer.tar');
    await exportLayer(ov, tar);
    return { dir: s.dir, ov, tar, cleanup: () => s.cleanup() };
  };

  const sameAfterImport = async (dir: string, ov: Overlay, source: Parameters<typeof importLayer>[0], into: string): Promise<void> => {
    const imp = path.join(dir, into);
    await importLayer(source, imp, { whiteouts: 'kernel' });
    const again = await Overlay.open({ lower: [imp, ...ov.stack.lower], whiteouts: 'kernel' });
    try {
      assert.deepEqual(await mergedTree(again), await mergedTree(ov));
    } finally {
      await again.close();
    }
  };

  it('tar, tar+gzip and tar+zstd (told apart by their first bytes), from a file or from a stream, give the same layer', async function () {
    if (!ZSTD) skipBecause(this, 'the zstd program (Debian package zstd) is not installed: it makes the zstd blob');
    const { dir, ov, tar, cleanup } = await build();
    try {
      const gz = tar + '.gz';
      const zst = tar + '.zst';
      execFileSync('gzip', ['-k', tar]);
      execFileSync('zstd', ['-q', tar, '-o', zst]);
      await sameAfterImport(dir, ov, tar, 'from-tar');
      await sameAfterImport(dir, ov, gz, 'from-gz');
      await sameAfterImport(dir, ov, zst, 'from-zst');
      await sameAfterImport(dir, ov, fs.createReadStream(zst, { highWaterMark: 1000 }), 'from-zst-stream');
      await sameAfterImport(dir, ov, fs.readFileSync(gz), 'from-gz-buffer');
      assert.equal(
        fs.readlinkSync(path.join(dir, 'from-zst', 'abs-link')),
        '/etc/conf',
        'a symlink target is data: kept as it is, resolved inside the overlay',
      );
      assert.deepEqual(
        (await readTar(zst)).map((e) => e.name),
        (await readTar(tar)).map((e) => e.name),
      );
    } finally {
      await ov.close();
      cleanup();
    }
  });

  it('a damaged blob is a clear EINVAL (gzip, zstd, truncated tar)', async function () {
    if (!ZSTD) skipBecause(this, 'the zstd program (Debian package zstd) is not installed: it makes the zstd blob');
    const { dir, ov, tar, cleanup } = await build();
    try {
      execFileSync('gzip', ['-k', tar]);
      execFileSync('zstd', ['-q', tar, '-o', tar + '.zst']);
      const cut = (f: string): string => {
        const raw = fs.readFileSync(f);
        fs.writeFileSync(f + '.cut', raw.subarray(0, Math.floor(raw.length / 2)));
        return f + '.cut';
      };
      await assert.rejects(importLayer(cut(tar + '.gz'), path.join(dir, 'a'), { whiteouts: 'kernel' }), { code: 'EINVAL', message: /gzip/ });
      await assert.rejects(importLayer(cut(tar + '.zst'), path.join(dir, 'b'), { whiteouts: 'kernel' }), { code: 'EINVAL', message: /zstd/ });
      const raw = fs.readFileSync(tar);
      await assert.rejects(importLayer(raw.subarray(0, 512 + 100), path.join(dir, 'c'), { whiteouts: 'kernel' }), { code: 'EINVAL', message: /truncated/ });
    } finally {
      await ov.close();
      cleanup();
    }
  });

  it('an absolute name, or a hard link to one, is refused and nothing is written outside', async () => {
    const s = makeStack('oci', [{}]);
    try {
      const outside = path.join(s.dir, 'outside');
      for (const [what, headers] of [
        ['absolute name', [{ name: outside, type: '0', size: 1 }]],
        [
          'hard link to an absolute name',
          [
            { name: 'f', type: '0', size: 1 },
            { name: 'h', type: '1', size: 0, linkname: path.join(s.dir, 'l0') },
          ],
        ],
      ] as [string, { name: string; type: string; size: number; linkname?: string }[]][]) {
        const file = path.join(s.dir, 'evil.tar');
        const w = new TarWriter(fs.createWriteStream(file), { gzip: false });
        for (const h of headers)
          await w.file(
            { mode: 0o644, uid: 0, gid: 0, mtime: 0, ...h },
            (async function* () {
              yield Buffer.from('x');
            })(),
          );
        await w.end();
        const target = path.join(s.dir, 'layer');
        await assert.rejects(importLayer(file, target, { whiteouts: 'oci' }), { code: 'EACCES', message: /refusing entry .*absolute name/ }, what);
        assert.ok(!fs.existsSync(outside));
        assert.ok(!fs.existsSync(path.join(target, outside)), 'not stripped and written inside either');
      }
    } finally {
      s.cleanup();
    }
  });

  it('a failed import leaves no layer directory and nothing beside it; a directory with entries is refused (ENOTEMPTY)', async () => {
    const { dir, ov, tar, cleanup } = await build();
    try {
      const raw = fs.readFileSync(tar);
      const target = path.join(dir, 'new', 'layer');
      await assert.rejects(importLayer(raw.subarray(0, raw.length - 1024 - 512 - 100), target, { whiteouts: 'kernel' }), { code: 'EINVAL' });
      assert.deepEqual(fs.readdirSync(path.join(dir, 'new')), [], 'no layer directory, no temporary one');
      fs.mkdirSync(target);
      await importLayer(tar, target, { whiteouts: 'kernel' }); // an empty directory is fine
      assert.ok(fs.existsSync(path.join(target, 'etc/conf')));
      await assert.rejects(importLayer(tar, target, { whiteouts: 'kernel' }), { code: 'ENOTEMPTY' });
    } finally {
      await ov.close();
      cleanup();
    }
  });

  it('the event loop turns while a layer imports (other requests are answered meanwhile)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-turns-'));
    try {
      const file = path.join(dir, 'layer.tar.gz');
      await makeLayer(file, 2, 8, 1500, true);
      let turns = 0;
      let importing = true;
      const tick = (): void => {
        if (!importing) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      const r = await importLayer(file, path.join(dir, 'layer'), { whiteouts: 'oci' });
      importing = false;
      assert.equal(r.entries, 2 + 1 + 3 + 1500);
      assert.ok(turns >= 100, `the event loop turned ${turns} times during the import`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const kind of ['gzip', 'zstd'] as const) {
    it(`a ${kind} layer of 384 MiB imports with bounded memory (child process peak RSS)`, async function () {
      this.timeout(180_000);
      if (kind === 'zstd' && !ZSTD) skipBecause(this, 'the zstd program (Debian package zstd) is not installed: it makes the zstd blob');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-mem-'));
      try {
        const tar = path.join(dir, 'layer.tar');
        let file = tar + '.gz';
        if (kind === 'gzip') await makeLayer(file, 3, 120, 5000, true);
        else {
          await makeLayer(tar, 3, 120, 5000, false);
          file = tar + '.zst';
          execFileSync('zstd', ['-q', '--rm', tar, '-o', file]);
        }
        const r = spawnSync(process.execPath, [CHILD, file, path.join(dir, 'layer')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const { maxRssMiB, entries } = JSON.parse(r.stdout) as { maxRssMiB: number; entries: number };
        assert.equal(entries, 1 + 3 + 10 + 5000);
        assert.equal(fs.statSync(path.join(dir, 'layer/big/f2')).size, 120 << 20);
        // The whole layer is 5 times this: reading it into memory, as the import once did, cannot pass.
        assert.ok(maxRssMiB < 200, `peak RSS ${maxRssMiB} MiB while importing a 360+ MiB layer`);
        console.log(
          `      # ${kind}: peak RSS ${maxRssMiB} MiB importing ${(fs.statSync(path.join(dir, 'layer/big/f0')).size * 3) >> 20} MiB of files + 5000 small ones`,
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
