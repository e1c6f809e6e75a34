/**
 * An image by reference, as overlayws --image REF and Open Image… take it: an OCI image layout
 * directory (oci-layout, index.json, blobs/sha256/…), a `docker save` / `podman save` archive
 * (manifest.json and layer tars; an OCI layout inside is read when there is no manifest.json),
 * or the name or id of an image in the local Docker daemon. Every JSON document read is checked
 * against the digest that names it (index → manifest → config); layers are checked as they are
 * unpacked (layerCache.ts).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createError } from '../overlay';
import { dirBlobs, tarBlobs, type Blobs } from './blobs';
import { sha256Hex, type LayerBlob } from './layerCache';

export type ImageSource = 'docker' | 'docker-archive' | 'oci-layout';

/** The parts of an image config (OCI image-spec config, Docker's is a superset) this code reads and writes. */
export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
  history?: HistoryItem[];
  [key: string]: unknown;
}

export interface HistoryItem {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  author?: string;
}

export interface ImageLayer extends LayerBlob {
  mediaType: string;
  /** The blob's member in the image files (copied as is when the image is committed on top of). */
  blob: string;
}

export interface Image {
  ref: string;
  source: ImageSource;
  /** The config's digest, "sha256:…": the image id. */
  id: string;
  config: ImageConfig;
  /** Bottom-most first, as the config lists them. */
  layers: ImageLayer[];
  /** Tags the archive or layout names the image by. */
  tags: string[];
  files: Blobs;
}

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
};

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function parseJson<T>(b: Buffer, what: string, where: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch (err) {
    throw createError('EINVAL', 'image', where, `${what} is not JSON: ${(err as Error).message}`);
  }
}

/** A blob named by its digest, read and checked. */
function readVerified(files: Blobs, digest: string, what: string): Buffer {
  const hex = sha256Hex(digest, `${what} in ${files.where}`);
  const b = files.read(`blobs/sha256/${hex}`);
  if (sha256(b) !== hex)
    throw createError('EINVAL', 'image', files.where, `${what} digest mismatch: named ${digest}, its content is sha256:${sha256(b)}; refusing it`);
  return b;
}

function checkConfig(config: ImageConfig, where: string): void {
  if (!config || typeof config !== 'object' || !config.rootfs || !Array.isArray(config.rootfs.diff_ids))
    throw createError('EINVAL', 'image', where, 'the image config has no rootfs.diff_ids');
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

/** The manifest of an index for this machine (linux/amd64 on x64), or the only one. */
function pickManifest(files: Blobs, index: { manifests?: Descriptor[] }, where: string, depth = 0): { manifest: Descriptor; tags: string[] } {
  const all = index.manifests ?? [];
  if (all.length === 0) throw createError('EINVAL', 'image', where, 'the image index lists no manifests');
  const arch = GOARCH[process.arch] ?? process.arch;
  const images = all.filter((m) => !(m.platform?.architecture === 'unknown')); // attestations
  const mine = images.filter((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch));
  if (mine.length !== 1 && images.length !== 1) {
    const choices = images.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : m.digest)).join(', ');
    throw createError(
      'EINVAL',
      'image',
      where,
      `the image index has ${images.length} manifests and ${mine.length} for linux/${arch} (${choices}): give an image with one`,
    );
  }
  const d = mine.length === 1 ? mine[0] : images[0];
  const tags = [d.annotations?.['io.containerd.image.name'], d.annotations?.['org.opencontainers.image.ref.name']].filter((t): t is string => !!t);
  if (d.mediaType === MEDIA.ociIndex || d.mediaType === MEDIA.dockerList) {
    if (depth > 4) throw createError('EINVAL', 'image', where, 'image indexes nested too deep');
    const nested = parseJson<{ manifests?: Descriptor[] }>(readVerified(files, d.digest, 'image index'), 'an image index', where);
    const r = pickManifest(files, nested, where, depth + 1);
    return { manifest: r.manifest, tags: [...tags, ...r.tags] };
  }
  return { manifest: d, tags };
}

/** An OCI image layout (a directory, or the files of an archive that has no manifest.json). */
function readOciLayout(ref: string, files: Blobs, source: ImageSource): Image {
  if (!files.has('index.json'))
    throw createError('EINVAL', 'image', files.where, 'neither an OCI image layout (index.json) nor a docker save archive (manifest.json)');
  const index = parseJson<{ manifests?: Descriptor[] }>(files.read('index.json'), 'index.json', files.where);
  const { manifest: d, tags } = pickManifest(files, index, files.where);
  const manifest = parseJson<{ config: Descriptor; layers: Descriptor[] }>(readVerified(files, d.digest, 'image manifest'), 'the image manifest', files.where);
  if (!manifest.config || !Array.isArray(manifest.layers)) throw createError('EINVAL', 'image', files.where, 'the image manifest has no config or layers');
  const config = parseJson<ImageConfig>(readVerified(files, manifest.config.digest, 'image config'), 'the image config', files.where);
  checkConfig(config, files.where);
  if (config.rootfs.diff_ids.length !== manifest.layers.length)
    throw createError(
      'EINVAL',
      'image',
      files.where,
      `the manifest has ${manifest.layers.length} layers, the config ${config.rootfs.diff_ids.length} diff IDs`,
    );
  const layers = manifest.layers.map((l, i): ImageLayer => {
    const blob = `blobs/sha256/${sha256Hex(l.digest, `layer ${i} in ${files.where}`)}`;
    return {
      diffId: config.rootfs.diff_ids[i],
      digest: l.digest,
      mediaType: l.mediaType ?? MEDIA.ociLayer,
      blob,
      where: `${files.where}: ${blob}`,
      open: () => files.open(blob),
    };
  });
  return { ref, source, id: manifest.config.digest, config, layers, tags, files };
}

/** A `docker save` / `podman save` archive. */
function readDockerArchive(ref: string, files: Blobs): Image {
  if (!files.has('manifest.json')) return readOciLayout(ref, files, 'docker-archive');
  const list = parseJson<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(files.read('manifest.json'), 'manifest.json', files.where);
  if (!Array.isArray(list) || list.length === 0) throw createError('EINVAL', 'image', files.where, 'manifest.json lists no image');
  if (list.length > 1)
    throw createError(
      'EINVAL',
      'image',
      files.where,
      `the archive holds ${list.length} images (${list.map((m) => m.RepoTags?.[0] ?? m.Config).join(', ')}): save one image per archive`,
    );
  const m = list[0];
  const raw = files.read(m.Config);
  const configHex = sha256(raw);
  const named = /([0-9a-f]{64})(\.json)?$/.exec(m.Config)?.[1];
  if (named !== undefined && named !== configHex)
    throw createError('EINVAL', 'image', files.where, `image config digest mismatch: ${m.Config} holds sha256:${configHex}; refusing it`);
  const config = parseJson<ImageConfig>(raw, 'the image config', files.where);
  checkConfig(config, files.where);
  if (config.rootfs.diff_ids.length !== m.Layers.length)
    throw createError('EINVAL', 'image', files.where, `manifest.json lists ${m.Layers.length} layers, the config ${config.rootfs.diff_ids.length} diff IDs`);
  const layers = m.Layers.map((blob, i): ImageLayer => {
    // Newer Docker names layers blobs/sha256/<digest of the blob>; older ones <id>/layer.tar.
    const hex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(blob)?.[1];
    return {
      diffId: config.rootfs.diff_ids[i],
      digest: hex && `sha256:${hex}`,
      mediaType: MEDIA.dockerLayer,
      blob,
      where: `${files.where}: ${blob}`,
      open: () => files.open(blob),
    };
  });
  return { ref, source: 'docker-archive', id: `sha256:${configHex}`, config, layers, tags: m.RepoTags ?? [], files };
}

/** What REF names: a layout directory, an archive file, or else a Docker image name. */
export function refKind(ref: string): ImageSource {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(ref);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) return 'oci-layout';
  if (st?.isFile()) return 'docker-archive';
  if (ref.includes('/') && (ref.startsWith('.') || ref.startsWith('/')))
    throw createError('ENOENT', 'image', ref, 'no such image archive or OCI layout directory');
  return 'docker';
}

/** An image from a layout directory or an archive, without any daemon. */
export function readImageFiles(ref: string): Image {
  const kind = refKind(ref);
  if (kind === 'oci-layout') {
    const files = dirBlobs(path.resolve(ref));
    if (!files.has('oci-layout') && !files.has('index.json')) throw createError('EINVAL', 'image', ref, 'not an OCI image layout: no oci-layout or index.json');
    return readOciLayout(ref, files, 'oci-layout');
  }
  if (kind === 'docker-archive') return readDockerArchive(ref, tarBlobs(path.resolve(ref)));
  throw createError('ENOENT', 'image', ref, 'no such image archive or OCI layout directory');
}

const run = promisify(execFile);

export interface DockerImage {
  Id: string;
  RepoTags?: string[];
  GraphDriver?: { Name?: string; Data?: Record<string, string> };
}

/** `docker image inspect REF`, or a clear error when Docker is not there or has no such image. */
export async function dockerInspectImage(ref: string): Promise<DockerImage> {
  let out: string;
  try {
    out = (await run('docker', ['image', 'inspect', '--', ref], { maxBuffer: 1 << 26 })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw createError('ENOENT', 'image', ref, 'not an image archive or OCI layout directory, and there is no docker command to look the name up');
    throw createError('ENOENT', 'image', ref, `no such image: ${(e.stderr ?? e.message).trim().split('\n')[0]}`);
  }
  return (JSON.parse(out) as DockerImage[])[0];
}
