/**
 * Commit: an upper layer directory becomes a new layer on top of a base image's layers, with
 * the base's config kept (Env, Cmd, Entrypoint, WorkingDir, labels...) and extended as `docker
 * commit` does it: the new diff ID appended to rootfs.diff_ids, a history entry (created,
 * created_by, comment), a new `created`. Written as an OCI image layout directory and/or a
 * `docker load`-able archive (manifest.json, the config, one tar per layer), and loaded into
 * Docker when asked. The base's layer blobs are copied as they are (their digests computed on
 * the way); the new layer is an uncompressed OCI layer whose whiteouts are `.wh.` entries and
 * opaque directories `.wh..wh..opq` (exportLayer). Outputs are written under temporary names
 * and renamed into place when complete.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createError } from '../overlay';
import { exportLayerDir, TarWriter, type LayerFormat } from '../overlay/oci';
import { MEDIA, type HistoryItem, type Image, type ImageConfig } from './image';

export interface CommitOptions {
  /** NAME:TAG (":latest" when no tag) for the archive's RepoTags, the layout's ref name, docker load. */
  tag?: string;
  dockerArchive?: string;
  ociLayout?: string;
  /** docker load the result. */
  load?: boolean;
  /** The history entry's comment. */
  comment?: string;
  /** The history entry's created_by. */
  createdBy?: string;
  /** Called while the upper is read (e.g. a container is paused meanwhile), see readUpper. */
  around?: <T>(read: () => Promise<T>) => Promise<T>;
}

export interface CommitResult {
  /** The new image's id: its config's digest. */
  id: string;
  /** The new layer's diff ID. */
  diffId: string;
  config: ImageConfig;
  /** What docker load printed, when loaded. */
  loaded?: string;
}

const run = promisify(execFile);

/** NAME:TAG with ":latest" added when there is no tag; EINVAL for what Docker would refuse. */
export function normalTag(tag: string): string {
  const slash = tag.lastIndexOf('/');
  const full = tag.indexOf(':', slash + 1) < 0 ? `${tag}:latest` : tag;
  if (!/^[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[0-9]+)?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(full))
    throw createError('EINVAL', 'commit', tag, 'not a valid image name NAME[:TAG] (lower case, digits, . _ -)');
  return full;
}

function tmpBeside(p: string): string {
  return `${p}.ovlws-commit-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

interface BlobOut {
  mediaType: string;
  digest: string;
  size: number;
  /** Where its bytes are. */
  read: () => AsyncIterable<Uint8Array>;
}

/** sha256 and compression of a stream, without keeping it. */
async function digestOf(source: AsyncIterable<Uint8Array>): Promise<{ digest: string; size: number; gzip: boolean; zstd: boolean }> {
  const h = createHash('sha256');
  let size = 0;
  let head: Buffer | undefined;
  for await (const c of source) {
    if (!head) head = Buffer.from(c.subarray(0, 4));
    h.update(c);
    size += c.byteLength;
  }
  return { digest: `sha256:${h.digest('hex')}`, size, gzip: head?.[0] === 0x1f && head[1] === 0x8b, zstd: head?.readUInt32LE(0) === 0xfd2fb528 };
}

async function copyTo(dst: string, src: AsyncIterable<Uint8Array>): Promise<void> {
  const fh = await fs.promises.open(dst, 'wx', 0o644);
  try {
    for await (const c of src) await fh.write(c);
  } finally {
    await fh.close();
  }
}

/** Commit `upper` (in `format`) on top of `base`. At least one of dockerArchive, ociLayout, load. */
export async function commitImage(base: Image, upper: string, format: LayerFormat, opts: CommitOptions): Promise<CommitResult> {
  if (!opts.dockerArchive && !opts.ociLayout && !opts.load)
    throw createError('EINVAL', 'commit', undefined, 'nothing to write: give --docker-archive, --oci-layout or --load');
  const tag = opts.tag === undefined ? undefined : normalTag(opts.tag);
  if (opts.ociLayout && fs.existsSync(opts.ociLayout) && fs.readdirSync(opts.ociLayout).length > 0)
    throw createError('ENOTEMPTY', 'commit', opts.ociLayout, 'the OCI layout directory must be new or empty');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-commit-'));
  try {
    const layerFile = path.join(scratch, 'layer.tar');
    const read = (): ReturnType<typeof exportLayerDir> => exportLayerDir(upper, layerFile, format, { gzip: false });
    const layer = await (opts.around ? opts.around(read) : read());
    const baseBlobs: BlobOut[] = [];
    for (const l of base.layers) {
      const d = await digestOf(base.files.open(l.blob));
      const mediaType = d.gzip ? `${MEDIA.ociLayer}+gzip` : d.zstd ? `${MEDIA.ociLayer}+zstd` : MEDIA.ociLayer;
      baseBlobs.push({ mediaType, digest: d.digest, size: d.size, read: () => base.files.open(l.blob) });
    }
    const newBlob: BlobOut = {
      mediaType: MEDIA.ociLayer,
      digest: layer.digest,
      size: layer.size,
      read: () => fs.createReadStream(layerFile, { highWaterMark: 1 << 20 }),
    };
    const blobs = [...baseBlobs, newBlob];

    const created = new Date().toISOString();
    const entry: HistoryItem = {
      created,
      created_by: opts.createdBy ?? 'overlayws commit',
      comment: opts.comment ?? `committed by overlayws from ${base.ref}`,
    };
    const config: ImageConfig = {
      ...base.config,
      created,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, layer.diffId] },
      history: [...(base.config.history ?? []), entry],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configHex = createHash('sha256').update(configBytes).digest('hex');
    const result: CommitResult = { id: `sha256:${configHex}`, diffId: layer.diffId, config };

    if (opts.ociLayout) await writeOciLayout(opts.ociLayout, configBytes, configHex, blobs, tag);
    let archive = opts.dockerArchive;
    if (!archive && opts.load) archive = path.join(scratch, 'image.tar');
    if (archive) await writeDockerArchive(archive, configBytes, configHex, blobs, tag);
    if (opts.load && archive) result.loaded = await dockerLoad(archive);
    return result;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function writeOciLayout(dir: string, configBytes: Buffer, configHex: string, blobs: BlobOut[], tag: string | undefined): Promise<void> {
  const tmp = tmpBeside(path.resolve(dir));
  fs.mkdirSync(path.join(tmp, 'blobs', 'sha256'), { recursive: true });
  try {
    const blob = (hex: string): string => path.join(tmp, 'blobs', 'sha256', hex);
    fs.writeFileSync(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    for (const b of blobs) if (!fs.existsSync(blob(b.digest.slice(7)))) await copyTo(blob(b.digest.slice(7)), b.read());
    fs.writeFileSync(blob(configHex), configBytes);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: `sha256:${configHex}`, size: configBytes.length },
        layers: blobs.map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })),
      }),
    );
    const manifestHex = createHash('sha256').update(manifest).digest('hex');
    fs.writeFileSync(blob(manifestHex), manifest);
    const annotations = tag ? { 'io.containerd.image.name': tag, 'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1) } : undefined;
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [{ mediaType: MEDIA.ociManifest, digest: `sha256:${manifestHex}`, size: manifest.length, annotations }],
    };
    fs.writeFileSync(path.join(tmp, 'index.json'), JSON.stringify(index));
    if (fs.existsSync(dir)) fs.rmdirSync(dir); // checked empty above
    fs.renameSync(tmp, dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function writeDockerArchive(file: string, configBytes: Buffer, configHex: string, blobs: BlobOut[], tag: string | undefined): Promise<void> {
  const tmp = tmpBeside(path.resolve(file));
  const out = fs.createWriteStream(tmp, { mode: 0o644 });
  const tar = new TarWriter(out, { gzip: false });
  const mtime = Math.floor(Date.now() / 1000);
  const put = (name: string, data: Buffer): Promise<void> =>
    tar.file(
      { name, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime, type: '0' },
      (async function* () {
        yield data;
      })(),
    );
  try {
    const names = blobs.map((b) => `${b.digest.slice(7)}/layer.tar`);
    const manifest = [{ Config: `${configHex}.json`, RepoTags: tag ? [tag] : null, Layers: names }];
    await put('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await put(`${configHex}.json`, configBytes);
    const seen = new Set<string>();
    for (let i = 0; i < blobs.length; i++) {
      if (seen.has(names[i])) continue;
      seen.add(names[i]);
      await tar.header({ name: path.posix.dirname(names[i]) + '/', mode: 0o755, uid: 0, gid: 0, size: 0, mtime, type: '5' });
      await tar.file({ name: names[i], mode: 0o644, uid: 0, gid: 0, size: blobs[i].size, mtime, type: '0' }, blobs[i].read() as AsyncIterable<Buffer>);
    }
    await tar.end();
    fs.renameSync(tmp, file);
  } catch (err) {
    await tar.abort();
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** `docker load -i FILE`: what it printed ("Loaded image: NAME:TAG" / "Loaded image ID: sha256:…"). */
export async function dockerLoad(file: string): Promise<string> {
  try {
    return (await run('docker', ['load', '-i', file], { maxBuffer: 1 << 24 })).stdout.trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw createError('ENOENT', 'commit', file, 'there is no docker command to load the image with (write --docker-archive or --oci-layout instead)');
    throw createError('EIO', 'commit', file, `docker load failed: ${(e.stderr ?? e.message).trim().split('\n')[0]}`);
  }
}

/** `docker save REF` into a temporary archive (for committing on top of an image of the daemon); remove() when done. */
export async function dockerSave(ref: string): Promise<{ file: string; remove: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-save-'));
  const file = path.join(dir, 'image.tar');
  try {
    await run('docker', ['save', '-o', file, ref], { maxBuffer: 1 << 24 });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw createError('EIO', 'commit', ref, `docker save failed: ${(e.stderr ?? e.message).trim().split('\n')[0]}`);
  }
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
