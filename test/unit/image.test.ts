/**
 * Images without a daemon: OCI layouts and docker save archives built here by hand (layer tars
 * written with the engine's tar header code), opened with overlayws --image; the layer cache
 * (keyed by diff ID, shared, atomic, verified) and what bad input does to it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, test } from 'mocha';
import { encodeHeader, padding, type TarHeader } from '../../server/src/overlay/oci/tarHeader';
import { runCli } from './helpers';

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Member = Partial<TarHeader> & { name: string; data?: string };

/** A tar from members (directories end in '/'), with the 10 KiB record padding docker writes. */
function tar(members: Member[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const dir = m.name.endsWith('/');
    parts.push(
      ...encodeHeader({
        mode: dir ? 0o755 : 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        type: dir ? '5' : '0',
        ...m,
        size: m.type && m.type !== '0' ? 0 : data.length,
      }),
    );
    if (!m.type || m.type === '0') parts.push(data, padding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc((10240 - (body.length % 10240)) % 10240)]);
}

interface Built {
  diffIds: string[];
}

/** An OCI image layout at `dir` from layer tars (bottom first); `gzip` compresses the blobs; `lie` corrupts a digest. */
function ociLayout(dir: string, layers: Buffer[], opts: { gzip?: boolean; lie?: 'diffId' | 'digest' } = {}): Built {
  const blobs = path.join(dir, 'blobs/sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    fs.writeFileSync(path.join(blobs, hex(b)), b);
    return { digest: `sha256:${hex(b)}`, size: b.length };
  };
  const diffIds = layers.map((l) => `sha256:${hex(l)}`);
  const descs = layers.map((l) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar' + (opts.gzip ? '+gzip' : ''),
    ...put(opts.gzip ? zlib.gzipSync(l) : l),
  }));
  if (opts.lie === 'diffId') diffIds[0] = `sha256:${'0'.repeat(64)}`;
  if (opts.lie === 'digest') {
    // the manifest names a blob whose content is another layer's
    const other = opts.gzip ? zlib.gzipSync(tar([{ name: 'other' }])) : tar([{ name: 'other' }]);
    fs.writeFileSync(path.join(blobs, descs[0].digest.slice(7)), other);
  }
  const config = put(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } })),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: descs,
      }),
    ),
  );
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }),
  );
  return { diffIds };
}

/** A docker save archive (old layout: <id>/layer.tar, <config hex>.json, manifest.json) of the same layers. */
function dockerArchive(file: string, layers: Buffer[]): void {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${hex(l)}`) } }),
  );
  const names = layers.map((l) => `${hex(Buffer.concat([l, Buffer.from('id')]))}/layer.tar`);
  const members: Member[] = [{ name: 'manifest.json', data: JSON.stringify([{ Config: `${hex(config)}.json`, RepoTags: ['x:1'], Layers: names }]) }];
  members.push({ name: `${hex(config)}.json`, data: config.toString() });
  layers.forEach((l, i) => members.push({ name: path.posix.dirname(names[i]) + '/' }, { name: names[i], data: l.toString('latin1') }));
  // layer bytes go in as latin1 strings: tar() writes them back byte for byte
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '', m.name.endsWith('layer.tar') ? 'latin1' : 'utf8');
    const dir = m.name.endsWith('/');
    parts.push(...encodeHeader({ name: m.name, mode: 0o644, uid: 0, gid: 0, mtime: 0, type: dir ? '5' : '0', size: dir ? 0 : data.length }));
    if (!dir) parts.push(data, padding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  fs.writeFileSync(file, Buffer.concat(parts));
}

const BASE = tar([{ name: 'etc/' }, { name: 'etc/conf', data: 'one' }, { name: 'etc/gone', data: 'g' }, { name: 'd/' }, { name: 'd/old', data: 'o' }]);
const MID = tar([
  { name: 'etc/' },
  { name: 'etc/conf', data: 'two' },
  { name: 'etc/.wh.gone' },
  { name: 'd/' },
  { name: 'd/.wh..wh..opq' },
  { name: 'd/new', data: 'n' },
]);
const TOP = tar([{ name: 'etc/' }, { name: 'etc/conf', data: 'three' }, { name: 'link', type: '2', linkname: 'etc/conf' }]);

describe('images without a daemon: overlayws --image', () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  let cache: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-image-'));
    env = { ...process.env, XDG_CACHE_HOME: path.join(tmp, 'cache') };
    cache = path.join(tmp, 'cache/overlayws/layers');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cli = (...args: string[]): ReturnType<typeof runCli> => runCli(args, { env });
  const cached = (): string[] => (fs.existsSync(path.join(cache, 'sha256')) ? fs.readdirSync(path.join(cache, 'sha256')).sort() : []);
  const leftovers = (): string[] => (fs.existsSync(path.join(cache, 'tmp')) ? fs.readdirSync(path.join(cache, 'tmp')) : []);

  test('an OCI layout (gzip) and a docker save archive of the same layers: one merged tree, the layers cached once and shared', () => {
    const { diffIds } = ociLayout(path.join(tmp, 'layout'), [BASE, MID, TOP], { gzip: true });
    dockerArchive(path.join(tmp, 'image.tar'), [BASE, MID, TOP]);
    const fromLayout = cli('--image', path.join(tmp, 'layout'), 'tree', '/');
    assert.equal(fromLayout.code, 0, fromLayout.err);
    assert.deepEqual(cached(), diffIds.map((d) => d.slice(7)).sort(), 'one cache directory per diff ID');
    const before = cached().map((h) => fs.statSync(path.join(cache, 'sha256', h)).ino);
    const fromArchive = cli('--image', path.join(tmp, 'image.tar'), 'tree', '/');
    assert.equal(fromArchive.code, 0, fromArchive.err);
    assert.equal(fromArchive.out, fromLayout.out, 'the same tree from both');
    assert.deepEqual(
      cached().map((h) => fs.statSync(path.join(cache, 'sha256', h)).ino),
      before,
      'the archive reuses the layers the layout unpacked',
    );
    assert.equal(cli('--image', path.join(tmp, 'image.tar'), 'cat', '/etc/conf').out, 'three');
    assert.equal(cli('--image', path.join(tmp, 'image.tar'), 'ls', '/d').out, 'f new\n', 'the opaque directory hides d/old');
    assert.equal(cli('--image', path.join(tmp, 'image.tar'), 'ls', '/etc').out, 'f conf\n', 'the whiteout hides etc/gone');
    assert.deepEqual(
      cli('--image', path.join(tmp, 'layout'), 'history', '/etc/gone')
        .out.trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { layer: number; kind: string }),
      [
        { layer: 1, kind: 'whiteout' },
        { layer: 2, kind: 'file', size: 1, sha256: hex(Buffer.from('g')) },
      ],
    );
    assert.deepEqual(leftovers(), [], 'no temporary directories left');
  });

  test('without --upper the stack is read-only; with --upper/--work edits go there, the cache is never written', () => {
    ociLayout(path.join(tmp, 'layout'), [BASE, TOP]);
    const ro = cli('--image', path.join(tmp, 'layout'), 'rm', '/etc/conf');
    assert.equal(ro.code, 1);
    assert.match(ro.err, /EROFS/);
    const snapshot = cli('--image', path.join(tmp, 'layout'), 'tree', '/').out;
    fs.mkdirSync(path.join(tmp, 'up'));
    fs.mkdirSync(path.join(tmp, 'wk'));
    const rw = ['--image', path.join(tmp, 'layout'), '--upper', path.join(tmp, 'up'), '--work', path.join(tmp, 'wk')];
    assert.equal(cli(...rw, 'rm', '/etc/conf').code, 0);
    assert.equal(cli(...rw, 'diff').out, 'C /etc\nD /etc/conf\n');
    assert.equal(cli('--image', path.join(tmp, 'layout'), 'tree', '/').out, snapshot, 'the image as it was');
    assert.equal(fs.readdirSync(path.join(tmp, 'up/etc')).join(), '.wh.conf', 'the upper has the whiteout, in the cache layers format (oci)');
    const mixed = cli('--image', path.join(tmp, 'layout'), '--lower', tmp, 'ls', '/');
    assert.equal(mixed.code, 2, 'an image names the lowers itself');
  });

  for (const [what, lie, message] of [
    [
      'a layer whose diff ID does not match the config',
      'diffId',
      /layer diff ID mismatch: the config says sha256:0{64}, the uncompressed layer is sha256:[0-9a-f]{64}; refusing it/,
    ],
    [
      'a layer blob whose digest does not match the manifest',
      'digest',
      /layer digest mismatch: the manifest says sha256:[0-9a-f]{64}, the blob is sha256:[0-9a-f]{64}; refusing it/,
    ],
  ] as const) {
    test(`${what}: refused with a clear message, nothing in the cache`, () => {
      ociLayout(path.join(tmp, 'layout'), [BASE], { gzip: true, lie });
      const r = cli('--image', path.join(tmp, 'layout'), 'ls', '/');
      assert.equal(r.code, 1);
      assert.match(r.err, message);
      assert.deepEqual(cached(), []);
      assert.deepEqual(leftovers(), []);
    });
  }

  test('truncated or corrupt archives and blobs, hostile entries: refused, nothing in the cache, nothing written outside it', () => {
    const cases: [string, () => string, RegExp][] = [
      [
        'a truncated docker save archive',
        () => {
          dockerArchive(path.join(tmp, 'image.tar'), [BASE, MID]);
          const f = path.join(tmp, 'image.tar');
          fs.truncateSync(f, fs.statSync(f).size - 3000);
          return f;
        },
        /truncated image archive/,
      ],
      [
        'a truncated gzip layer',
        () => {
          ociLayout(path.join(tmp, 'trunc'), [BASE], { gzip: true });
          const blobs = path.join(tmp, 'trunc/blobs/sha256');
          const layer = fs.readdirSync(blobs).find((b) => fs.readFileSync(path.join(blobs, b))[0] === 0x1f) as string;
          fs.truncateSync(path.join(blobs, layer), 40);
          return path.join(tmp, 'trunc');
        },
        /gzip|truncated|unexpected end/i,
      ],
      [
        "an entry with '..'",
        () => (ociLayout(path.join(tmp, 'dotdot'), [tar([{ name: 'a/' }, { name: 'a/../../escaped', data: 'x' }])]), path.join(tmp, 'dotdot')),
        /refusing entry with '\.\.' in its name/,
      ],
      [
        'an absolute name',
        () => (ociLayout(path.join(tmp, 'abs'), [tar([{ name: '/abs-escaped', data: 'x' }])]), path.join(tmp, 'abs')),
        /refusing entry with an absolute name/,
      ],
      [
        'a file through a symlink pointing outside',
        () => (
          ociLayout(path.join(tmp, 'link'), [
            tar([
              { name: 'out', type: '2', linkname: tmp },
              { name: 'out/escaped', data: 'x' },
            ]),
          ]),
          path.join(tmp, 'link')
        ),
        /refusing entry through the symlink 'out'/,
      ],
      [
        'a hard link to outside',
        () => (ociLayout(path.join(tmp, 'hard'), [tar([{ name: 'h', type: '1', linkname: '/etc/passwd' }])]), path.join(tmp, 'hard')),
        /hard link to the absolute name/,
      ],
      ['not an image at all', () => (fs.mkdirSync(path.join(tmp, 'empty')), path.join(tmp, 'empty')), /not an OCI image layout/],
    ];
    for (const [what, make, message] of cases) {
      const ref = make();
      const r = cli('--image', ref, 'ls', '/');
      assert.equal(r.code, 1, `${what}: ${r.out}`);
      assert.match(r.err, message, what);
      assert.match(r.err, /^overlayws: E[A-Z]+: .*\n$/, `${what}: one line`);
      assert.deepEqual(cached(), [], `${what}: nothing cached`);
      assert.deepEqual(leftovers(), [], `${what}: no temporary directory left`);
      assert.ok(!fs.existsSync(path.join(tmp, 'escaped')) && !fs.existsSync('/abs-escaped'), `${what}: nothing outside`);
    }
  });

  test('an index with several manifests: the one for this machine (linux/amd64 on x64), else an error listing them', () => {
    const dir = path.join(tmp, 'multi');
    ociLayout(dir, [BASE]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Record<string, unknown>[] };
    const mine = { ...index.manifests[0], platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch } };
    const other = { ...index.manifests[0], digest: `sha256:${'1'.repeat(64)}`, platform: { os: 'linux', architecture: 's390x' } };
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [other, mine] }));
    const r = cli('--image', dir, 'cat', '/etc/conf');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'one');
    fs.writeFileSync(
      path.join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [other, { ...other, platform: { os: 'linux', architecture: 'riscv64' } }] }),
    );
    const none = cli('--image', dir, 'ls', '/');
    assert.equal(none.code, 1);
    assert.match(none.err, /the image index has 2 manifests and 0 for linux\/\w+ \(linux\/s390x, linux\/riscv64\)/);
  });

  test('a newer docker save archive (layers named blobs/sha256/<digest>): the blob digest is checked too', () => {
    const f = path.join(tmp, 'new.tar');
    const config = Buffer.from(JSON.stringify({ os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${hex(BASE)}`] } }));
    const members = (layer: Buffer): Buffer =>
      Buffer.concat(
        [
          ['manifest.json', Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${hex(config)}`, Layers: [`blobs/sha256/${hex(BASE)}`] }]))],
          [`blobs/sha256/${hex(config)}`, config],
          [`blobs/sha256/${hex(BASE)}`, layer],
        ].flatMap(([name, data]) => [
          ...encodeHeader({ name: name as string, mode: 0o644, uid: 0, gid: 0, mtime: 0, type: '0', size: (data as Buffer).length }),
          data as Buffer,
          padding((data as Buffer).length),
        ]),
      );
    fs.writeFileSync(f, members(BASE));
    assert.equal(cli('--image', f, 'cat', '/etc/conf').out, 'one');
    fs.rmSync(cache, { recursive: true });
    fs.writeFileSync(f, members(zlib.gzipSync(BASE))); // the same tar, but not the blob its name says
    const r = cli('--image', f, 'ls', '/');
    assert.equal(r.code, 1);
    assert.match(r.err, /layer digest mismatch/);
    assert.deepEqual(cached(), []);
  });

  test('commit usage: at least one output; a stack that is not an image or a container is refused', () => {
    ociLayout(path.join(tmp, 'layout'), [BASE]);
    fs.mkdirSync(path.join(tmp, 'up'));
    fs.mkdirSync(path.join(tmp, 'wk'));
    const noOutput = cli('--image', path.join(tmp, 'layout'), '--upper', path.join(tmp, 'up'), '--work', path.join(tmp, 'wk'), 'commit', '--tag', 'x:1');
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.err, /commit: give at least one output/);
    const ro = cli('--image', path.join(tmp, 'layout'), 'commit', '--oci-layout', path.join(tmp, 'o'));
    assert.equal(ro.code, 1);
    assert.match(ro.err, /EROFS: the overlay has no upper layer to commit/);
    const plain = cli(
      '--lower',
      path.join(tmp, 'layout'),
      '--upper',
      path.join(tmp, 'up'),
      '--work',
      path.join(tmp, 'wk'),
      'commit',
      '--oci-layout',
      path.join(tmp, 'o'),
    );
    assert.equal(plain.code, 2);
    assert.match(plain.err, /commit needs the image to commit on/);
    const badTag = cli(
      '--image',
      path.join(tmp, 'layout'),
      '--upper',
      path.join(tmp, 'up'),
      '--work',
      path.join(tmp, 'wk'),
      'commit',
      '--tag',
      'Bad Name',
      '--oci-layout',
      path.join(tmp, 'o'),
    );
    assert.equal(badTag.code, 1);
    assert.match(badTag.err, /not a valid image name/);
    assert.ok(!fs.existsSync(path.join(tmp, 'o')), 'nothing written');
  });

  test('two processes unpacking the same layers at once: both open the image, one copy of each layer', async () => {
    ociLayout(path.join(tmp, 'layout'), [BASE, MID, TOP], { gzip: true });
    const bin = path.resolve(__dirname, '../../../bin/overlayws.js');
    const one = (): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [bin, '--image', path.join(tmp, 'layout'), 'cat', '/etc/conf'], { env });
        let out = '';
        p.stdout.on('data', (c: Buffer) => (out += c.toString()));
        p.on('close', (code) => resolve({ code, out }));
      });
    const rs = await Promise.all([one(), one(), one()]);
    assert.deepEqual(
      rs.map((r) => `${r.code} ${r.out}`),
      ['0 three', '0 three', '0 three'],
    );
    assert.equal(cached().length, 3);
    assert.deepEqual(leftovers(), []);
  });
});
