/**
 * Images over a real connection: overlay/openImage (an OCI layout built here, a scratch upper in
 * the user's cache), overlay/history labels, overlay/commitImage to a layout and an archive that
 * open again with the edit; and a 2 GiB layer imported while other requests are answered (the
 * server's peak RSS printed: OVERLAY_BIG_LAYER_MIB sets the size, default 2048).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { encodeHeader, padding } from '../../server/src/overlay/oci/tarHeader';
import { b64, makeStack, startServer, type Stack, type Started } from './harness';

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Writes an OCI layout whose one layer (uncompressed) is the tar `writeLayer` streams into a file. */
async function layout(dir: string, writeLayer: (out: fs.WriteStream, hash: ReturnType<typeof createHash>) => Promise<void>): Promise<void> {
  const blobs = path.join(dir, 'blobs/sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const tmp = path.join(dir, 'layer.tmp');
  const out = fs.createWriteStream(tmp);
  const hash = createHash('sha256');
  await writeLayer(out, hash);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const diffId = hash.digest('hex');
  fs.renameSync(tmp, path.join(blobs, diffId));
  const put = (b: Buffer): { digest: string; size: number } => (fs.writeFileSync(path.join(blobs, hex(b)), b), { digest: `sha256:${hex(b)}`, size: b.length });
  const config = put(
    Buffer.from(
      JSON.stringify({
        os: 'linux',
        architecture: 'amd64',
        config: { Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
        history: [{ created_by: 'made by the test' }],
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${diffId}`, size: fs.statSync(path.join(blobs, diffId)).size }],
      }),
    ),
  );
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }),
  );
}

async function put(out: fs.WriteStream, hash: ReturnType<typeof createHash>, b: Buffer): Promise<void> {
  hash.update(b);
  if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
}

/** A small layer: etc/conf and app/data. */
async function smallLayer(out: fs.WriteStream, hash: ReturnType<typeof createHash>): Promise<void> {
  for (const [name, data] of [
    ['etc/', ''],
    ['etc/conf', 'base\n'],
    ['app/', ''],
    ['app/data', 'data\n'],
  ]) {
    const dir = name.endsWith('/');
    for (const b of encodeHeader({ name, mode: dir ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, type: dir ? '5' : '0', size: data.length }))
      await put(out, hash, b);
    if (!dir) await put(out, hash, Buffer.concat([Buffer.from(data), padding(data.length)]));
  }
  await put(out, hash, Buffer.alloc(1024));
}

describe('images over the protocol', () => {
  let tmp: string;
  let st: Stack;
  let s: Started;
  const savedCache = process.env.XDG_CACHE_HOME;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-server-image-'));
    process.env.XDG_CACHE_HOME = path.join(tmp, 'cache'); // the server inherits it
    st = makeStack([{ 'a.txt': 'a' }], {});
    s = await startServer({ a: st.spec });
  });
  after(async () => {
    await s.stop();
    st.cleanup();
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('openImage with a scratch upper, history, commitImage to a layout and an archive that open again with the edit', async () => {
    await layout(path.join(tmp, 'img'), smallLayer);
    const info = await s.conn.sendRequest(P.OpenImage.type, { name: 'img', ref: path.join(tmp, 'img'), scratch: true });
    assert.equal(info.readOnly, false);
    assert.equal(info.image?.source, 'oci-layout');
    assert.deepEqual(info.image?.layers, ['made by the test']);
    assert.ok(info.stack.upper?.startsWith(path.join(tmp, 'cache/overlayws/scratch/img-')), `scratch upper in the cache: ${info.stack.upper}`);
    assert.ok(info.stack.lower[0].startsWith(path.join(tmp, 'cache/overlayws/layers/sha256/')));
    await s.conn.sendRequest(P.WriteFile.type, { name: 'img', path: '/etc/conf', data: b64('edited\n'), create: true, overwrite: true });
    await s.conn.sendRequest(P.Delete.type, { name: 'img', path: '/app/data', recursive: false });
    assert.deepEqual(
      (await s.conn.sendRequest(P.History.type, { name: 'img', path: '/etc/conf' })).map((h) => `${h.layer} ${h.kind} ${h.size}`),
      ['upper file 7', '0 file 5'],
    );
    const listed = await s.conn.sendRequest(P.ListOverlays.type);
    assert.equal(listed.find((o) => o.name === 'img')?.image?.id, info.image?.id, 'the list says which image');
    const out = await s.conn.sendRequest(P.CommitImage.type, {
      name: 'img',
      tag: 'committed:1',
      ociLayout: path.join(tmp, 'out-layout'),
      dockerArchive: path.join(tmp, 'out.tar'),
      message: 'from the server test',
    });
    assert.match(out.id, /^sha256:[0-9a-f]{64}$/);
    for (const [name, ref] of [
      ['l', path.join(tmp, 'out-layout')],
      ['t', path.join(tmp, 'out.tar')],
    ]) {
      const again = await s.conn.sendRequest(P.OpenImage.type, { name, ref });
      assert.equal(again.readOnly, true, 'no upper: read-only');
      assert.equal(again.image?.id, out.id);
      assert.equal(again.image?.layers[0], 'overlayws commit', 'the commit is the top history entry');
      assert.equal(Buffer.from(await readAll(name, '/etc/conf')).toString(), 'edited\n');
      assert.deepEqual(await s.conn.sendRequest(P.ReadDirectory.type, { name, path: '/app' }), [], 'the deletion is a whiteout in the new layer');
    }
    const bad = await s.conn.sendRequest(P.OpenImage.type, { name: 'bad', ref: path.join(tmp, 'nowhere') }).catch((e: unknown) => e as { message: string });
    assert.match((bad as { message: string }).message, /no such image archive or OCI layout directory/);
  });

  const readAll = (name: string, p: string): Promise<Uint8Array> => readOverlayFile((q) => s.conn.sendRequest(P.ReadFile.type, q), name, p);

  it('a 2 GiB layer imports while other requests are answered; the server peak RSS is printed', async function () {
    const mib = Number(process.env.OVERLAY_BIG_LAYER_MIB ?? 2048);
    this.timeout(600_000);
    await layout(path.join(tmp, 'big'), async (out, hash) => {
      for (const b of encodeHeader({ name: 'big.bin', mode: 0o644, uid: 0, gid: 0, mtime: 0, type: '0', size: mib * 1024 * 1024 })) await put(out, hash, b);
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      for (let i = 0; i < mib; i++) await put(out, hash, chunk);
      await put(out, hash, Buffer.alloc(1024));
    });
    let done = false;
    const opening = s.conn.sendRequest(P.OpenImage.type, { name: 'big', ref: path.join(tmp, 'big') }).finally(() => (done = true));
    let answeredDuring = 0;
    while (!done) {
      const dir = await s.conn.sendRequest(P.ReadDirectory.type, { name: 'a', path: '/' });
      assert.deepEqual(dir, [['a.txt', 1]]);
      if (!done) answeredDuring++;
      await new Promise((r) => setTimeout(r, 20));
    }
    const info = await opening;
    const st2 = await s.conn.sendRequest(P.Stat.type, { name: 'big', path: '/big.bin' });
    assert.equal(st2.size, mib * 1024 * 1024);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${s.child.pid}/status`, 'utf8'))?.[1];
    console.log(
      `      # ${mib} MiB layer imported; ${answeredDuring} readDirectory requests answered meanwhile; server peak RSS ${Math.round(Number(hwm) / 1024)} MiB`,
    );
    assert.ok(answeredDuring > 0, 'requests were answered while the layer was imported');
    assert.equal(info.image?.source, 'oci-layout');
  });
});
