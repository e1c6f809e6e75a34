/**
 * Proof with a tool nobody here wrote: umoci (Debian package) unpacks an OCI image
 * built by hand from our exported layers, and its root filesystem must equal the
 * overlay's merged tree; and a layer umoci repack produced, imported as a lower, must
 * give the tree umoci saw. Skips (with the reason printed) when umoci is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'mocha';
import { Overlay, type WhiteoutFormat } from '../../server/src/overlay';
import { exportLayer, exportLayerDir } from '../../server/src/overlay/oci';
import { describeOrSkip } from '../mocha/skip';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');
const FORMATS: WhiteoutFormat[] = ['kernel', 'oci'];
const ROOTLESS = process.getuid?.() !== 0;
const umociMissing = spawnSync('umoci', ['--version']).status !== 0 ? 'umoci is not installed (apt-get install -y umoci)' : false;
if (umociMissing) console.log(`# skipping umoci proofs: ${umociMissing}`);

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function umoci(...args: string[]): void {
  const r = spawnSync('umoci', ROOTLESS ? [...args.slice(0, 1), '--rootless', ...args.slice(1)] : args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`umoci ${args.join(' ')} failed: ${r.stderr}`);
}

function putBlob(image: string, data: Buffer): { digest: string; size: number } {
  const hex = sha256(data);
  fs.mkdirSync(path.join(image, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(image, 'blobs/sha256', hex), data);
  return { digest: 'sha256:' + hex, size: data.length };
}

/** An OCI image layout by hand: oci-layout, index.json, manifest + config + layer blobs. */
function buildImage(image: string, tag: string, layers: { file: string; diffId: string }[]): void {
  fs.mkdirSync(image, { recursive: true });
  fs.writeFileSync(path.join(image, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layerDescs = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...putBlob(image, fs.readFileSync(l.file)) }));
  const config = putBlob(
    image,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created_by: 'overlayws export' })),
      }),
    ),
  );
  const manifest = putBlob(
    image,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layerDescs,
      }),
    ),
  );
  fs.writeFileSync(
    path.join(image, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}

/** The blob file of the last layer of image:tag (as umoci wrote it). */
function lastLayerBlob(image: string, tag: string): string {
  const index = JSON.parse(fs.readFileSync(path.join(image, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  assert.ok(m, `tag ${tag} in index.json`);
  const blob = (d: string): string => path.join(image, 'blobs/sha256', d.replace(/^sha256:/, ''));
  const manifest = JSON.parse(fs.readFileSync(blob(m.digest), 'utf8')) as { layers: { digest: string }[] };
  return blob(manifest.layers[manifest.layers.length - 1].digest);
}

type Line = string;

/** The overlay's merged tree: names, types, modes, owners, contents, link targets; hard-link groups. */
async function mergedTree(ov: Overlay): Promise<Line[]> {
  const out: Line[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await ov.readdir(dir)) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const st = await ov.lstat(p);
      const x = st.type === 'f' ? sha256(await ov.readFile(p)) : st.type === 'l' ? '-> ' + (await ov.readlink(p)) : '';
      out.push(`${st.type} ${p} ${st.type === 'l' ? '' : st.mode.toString(8)} ${st.uid}:${st.gid} ${x}`);
      if (st.type === 'd') await walk(p);
    }
  };
  await walk('/');
  return out.sort();
}

/** The same lines for a plain directory (umoci's rootfs). */
function dirTree(root: string): Line[] {
  const out: Line[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir)) {
      const real = path.join(dir, name);
      const p = rel + '/' + name;
      const st = fs.lstatSync(real);
      const t = st.isFile()
        ? 'f'
        : st.isDirectory()
          ? 'd'
          : st.isSymbolicLink()
            ? 'l'
            : st.isCharacterDevice()
              ? 'c'
              : st.isBlockDevice()
                ? 'b'
                : st.isFIFO()
                  ? 'p'
                  : 's';
      const x = t === 'f' ? sha256(fs.readFileSync(real)) : t === 'l' ? '-> ' + fs.readlinkSync(real) : '';
      out.push(`${t} ${p} ${t === 'l' ? '' : (st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${x}`);
      if (t === 'd') walk(real, p);
    }
  };
  walk(root, '');
  return out.sort();
}

function mknodWhiteout(p: string): void {
  execFileSync('mknod', [p, 'c', '0', '0']);
}

/** Two lower layers (the top one with a whiteout), written in `format`. */
function writeLowers(dir: string, format: WhiteoutFormat): string[] {
  const l1 = path.join(dir, 'l1'); // bottom
  const l0 = path.join(dir, 'l0'); // top lower
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
    'etc/group': 'root:x:0:\n',
    'usr/bin/tool': '#!/bin/sh\necho tool\n',
    'usr/lib/libx.so': 'ELF',
    'usr/lib/liby.so': 'ELF2',
    'var/cache/app/a': 'a',
    'var/cache/app/b/c': 'c',
    'home/user/.profile': 'PS1=$\n',
  };
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(l1, rel)), { recursive: true });
    fs.writeFileSync(path.join(l1, rel), data);
  }
  fs.chmodSync(path.join(l1, 'usr/bin/tool'), 0o755);
  fs.chmodSync(path.join(l1, 'home/user'), 0o700);
  fs.symlinkSync('usr/bin/tool', path.join(l1, 'tool-link'));
  fs.mkdirSync(path.join(l0, 'usr/lib'), { recursive: true });
  fs.mkdirSync(path.join(l0, 'opt/x'), { recursive: true });
  fs.writeFileSync(path.join(l0, 'opt/x/readme'), 'from l0');
  if (format === 'oci') fs.writeFileSync(path.join(l0, 'usr/lib/.wh.liby.so'), '');
  else mknodWhiteout(path.join(l0, 'usr/lib/liby.so'));
  return [l0, l1];
}

for (const format of FORMATS) {
  const skip = umociMissing || (format === 'kernel' && ROOTLESS ? 'kernel whiteouts need root (mknod 0/0, trusted.overlay.* xattrs)' : false);
  describeOrSkip(`umoci agrees with the overlay (${format} whiteouts)`, skip, () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-oci-'));
    });
    after(() => {
      if (!process.env.KEEP_OCI) fs.rmSync(dir, { recursive: true, force: true });
      else console.log('# kept ' + dir);
    });

    test('exported lowers + upper, unpacked by umoci, equal the merged tree', async () => {
      const lower = writeLowers(dir, format);
      const upper = path.join(dir, 'upper');
      const work = path.join(dir, 'work');
      fs.mkdirSync(upper);
      fs.mkdirSync(work);
      const ov = await Overlay.open({ lower, upper, work, whiteouts: format });
      try {
        await ov.writeFile('/etc/passwd', 'root:x:0:0::/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n'); // copy-up, C
        await ov.unlink('/etc/group'); // whiteout
        await ov.rm('/var/cache/app', { recursive: true }); // whiteout of a directory
        await ov.mkdir('/var/cache/app'); // ... and a new opaque one over it
        await ov.writeFile('/var/cache/app/fresh', 'fresh');
        await ov.chmod('/home/user/.profile', 0o600);
        await ov.chmod('/usr/bin/tool', 0o4755);
        await ov.symlink('/etc/passwd', '/usr/passwd-link');
        await ov.mkdir('/srv/data/' + 'n'.repeat(90), { recursive: true }); // > 100 bytes: PAX path
        await ov.writeFile('/srv/data/' + 'n'.repeat(90) + '/' + 'f'.repeat(40), 'long path');
        await ov.writeFile('/srv/one', 'linked');
        fs.linkSync(path.join(upper, 'srv/one'), path.join(upper, 'srv/two')); // as `ln` on a kernel mount would leave it
        await ov.rm('/opt/x', { recursive: true }); // a whole directory of the top lower
        execFileSync('setfattr', ['-n', 'user.origin', '-v', 'overlayws', path.join(upper, 'etc/passwd')]);

        const layers = [];
        for (const [i, l] of [...lower].reverse().entries()) {
          const file = path.join(dir, `lower${i}.tar.gz`);
          layers.push({ file, ...(await exportLayerDir(l, file, { whiteouts: format })) });
        }
        const upperFile = path.join(dir, 'upper.tar.gz');
        layers.push({ file: upperFile, ...(await exportLayer(ov, upperFile)) });
        const image = path.join(dir, 'image');
        buildImage(image, 'latest', layers);
        const bundle = path.join(dir, 'bundle');
        umoci('unpack', '--image', `${image}:latest`, bundle);
        const rootfs = path.join(bundle, 'rootfs');

        const want = await mergedTree(ov);
        assert.ok(want.some((l) => l.startsWith('f /var/cache/app/fresh')) && !want.some((l) => l.includes('/var/cache/app/a')));
        assert.deepEqual(dirTree(rootfs), want);
        assert.equal(fs.statSync(path.join(rootfs, 'srv/one')).ino, fs.statSync(path.join(rootfs, 'srv/two')).ino, 'hard link kept');
        if (!ROOTLESS) {
          const x = execFileSync('getfattr', ['--only-values', '-n', 'user.origin', path.join(rootfs, 'etc/passwd')], { encoding: 'utf8' });
          assert.equal(x, 'overlayws');
        }

        // The reverse: change the tree in umoci's bundle, let umoci repack it as a new layer,
        // import that layer as a lower over the same stack: the merged tree is what umoci saw.
        fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/zsh\n');
        fs.rmSync(path.join(rootfs, 'usr/lib'), { recursive: true });
        fs.rmSync(path.join(rootfs, 'srv/two'));
        fs.mkdirSync(path.join(rootfs, 'usr/lib'), { mode: 0o750 });
        fs.chmodSync(path.join(rootfs, 'usr/lib'), 0o750);
        fs.writeFileSync(path.join(rootfs, 'usr/lib/libz.so'), 'ELF3');
        fs.symlinkSync('../etc/passwd', path.join(rootfs, 'home/pw'));
        fs.mkdirSync(path.join(rootfs, 'new/deeper'), { recursive: true });
        fs.writeFileSync(path.join(rootfs, 'new/deeper/file'), 'new');
        fs.rmSync(path.join(rootfs, 'tool-link'));
        fs.chmodSync(path.join(rootfs, 'home/user/.profile'), 0o640);
        umoci('repack', '--image', `${image}:v2`, bundle);
        const seen = dirTree(rootfs);

        const imported = path.join(dir, 'imported');
        const r = spawnSync(
          process.execPath,
          [BIN, '--lower', [upper, ...lower].join(':'), 'import-layer', lastLayerBlob(image, 'v2'), imported, '--whiteouts', format],
          { encoding: 'utf8' },
        );
        assert.equal(r.status, 0, r.stderr);
        // umoci's layer leaves unchanged parents out (home/, home/user/ for a chmod of .profile):
        // the stack given before import-layer lends their metadata.
        // The image's layers as lowers: imported (top), then the upper, then the original lowers.
        const stacked = await Overlay.open({ lower: [imported, upper, ...lower], whiteouts: format });
        try {
          assert.deepEqual(await mergedTree(stacked), seen);
        } finally {
          await stacked.close();
        }
      } finally {
        await ov.close();
      }
    });
  });
}
