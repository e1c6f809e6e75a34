/**
 * Image layers unpacked once, shared between images: a content-addressed cache keyed by diff
 * ID (the sha256 of the uncompressed tar) in the user's cache directory,
 * `$XDG_CACHE_HOME/overlayws/layers/sha256/<hex>` (~/.cache when unset), each one a lower layer
 * in the OCI whiteout format (`.wh.` files: no device nodes, so no privileges needed, and
 * fuse-overlayfs reads them). A layer is unpacked streaming into a temporary directory beside
 * the cache, its blob digest (the manifest's) and diff ID (the config's) computed on the way,
 * and renamed into place only when both match: a mismatch, a truncated or corrupt blob, or a
 * hostile entry leaves nothing in the cache. Two unpacks of one layer at once (two windows, two
 * CLIs) each work in a temporary directory of their own; the first rename wins and the other
 * throws its copy away. In one process a second request for a layer joins the first.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createError, type OverlayError } from '../overlay';
import { importLayer, layerBytes } from '../overlay/oci';

/** The whiteout format of cached layers. */
export const CACHE_WHITEOUTS = 'oci';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'overlayws', 'layers');
}

/** A new empty upper and work directory for an image overlay, in the user's cache (…/overlayws/scratch/NAME-XXXXXX). */
export function scratchUpper(name: string, root = cacheRoot()): { upper: string; work: string } {
  const base = path.join(path.dirname(root), 'scratch');
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}-`));
  fs.mkdirSync(path.join(dir, 'upper'));
  fs.mkdirSync(path.join(dir, 'work'));
  return { upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
}

const HEX = /^[0-9a-f]{64}$/;

/** "sha256:<hex>" → hex, or EINVAL. */
export function sha256Hex(digest: string, what: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : '';
  if (!HEX.test(hex)) throw createError('EINVAL', 'image', what, `not a sha256 digest: ${JSON.stringify(digest)}`);
  return hex;
}

/** The directory of a cached layer. */
export function layerDir(diffId: string, root = cacheRoot()): string {
  return path.join(root, 'sha256', sha256Hex(diffId, 'diff ID'));
}

/** Hashes and counts a stream as it is read; what the reader leaves unread can be drained later. */
class Hashed {
  readonly hash: Hash = createHash('sha256');
  size = 0;
  private readonly it: AsyncIterator<Uint8Array>;
  private done = false;
  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }
  private async next(): Promise<Uint8Array | undefined> {
    if (this.done) return undefined;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return undefined;
    }
    this.hash.update(r.value);
    this.size += r.value.byteLength;
    return r.value;
  }
  /** The bytes; ending it early (the tar reader stops at the end-of-archive blocks) leaves the rest for drain(). */
  async *stream(): AsyncGenerator<Uint8Array> {
    for (let c = await this.next(); c !== undefined; c = await this.next()) yield c;
  }
  async drain(): Promise<void> {
    while ((await this.next()) !== undefined);
  }
  async close(): Promise<void> {
    if (!this.done) await this.it.return?.();
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

export interface LayerBlob {
  /** The config's rootfs.diff_ids entry: sha256 of the uncompressed tar. */
  diffId: string;
  /** The blob's digest as the manifest gives it (compressed bytes), when known. */
  digest?: string;
  /** Where it comes from, for messages. */
  where: string;
  open(): AsyncIterable<Uint8Array>;
}

/** An unpack error said of the layer (the image's blob), not of the temporary directory. */
function inLayer(err: unknown, layer: LayerBlob, tmp: string): unknown {
  const e = err as OverlayError;
  if (typeof e?.code !== 'string' || typeof e.description !== 'string' || e.syscall === 'image') return err;
  const entry = e.path !== undefined && e.path !== tmp ? `, entry '${e.path}'` : '';
  return createError(e.code, 'image', layer.where, `${e.description.replace(tmp, 'the layer')}${entry}`);
}

const inFlight = new Map<string, Promise<string>>();

/** The cache directory of `layer`, unpacked and verified first when it is not there yet. */
export function ensureLayer(layer: LayerBlob, root = cacheRoot()): Promise<string> {
  const dir = layerDir(layer.diffId, root);
  if (fs.existsSync(dir)) return Promise.resolve(dir);
  let p = inFlight.get(dir);
  if (!p) {
    p = unpackLayer(layer, dir, root).finally(() => inFlight.delete(dir));
    inFlight.set(dir, p);
  }
  return p;
}

async function unpackLayer(layer: LayerBlob, dir: string, root: string): Promise<string> {
  const tmpRoot = path.join(root, 'tmp');
  fs.mkdirSync(tmpRoot, { recursive: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = path.join(tmpRoot, `${path.basename(dir)}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  const blob = new Hashed(layer.open());
  let tar: Hashed | undefined;
  try {
    tar = new Hashed((await layerBytes(blob.stream())).bytes);
    await importLayer(tar.stream(), tmp, { whiteouts: CACHE_WHITEOUTS });
    await tar.drain(); // the padding after the end-of-archive blocks is part of the diff ID
    await blob.drain();
    const blobHex = blob.hex();
    const tarHex = tar.hex();
    if (layer.digest !== undefined && blobHex !== sha256Hex(layer.digest, layer.where))
      throw createError('EINVAL', 'image', layer.where, `layer digest mismatch: the manifest says ${layer.digest}, the blob is sha256:${blobHex}; refusing it`);
    if (tarHex !== sha256Hex(layer.diffId, layer.where))
      throw createError(
        'EINVAL',
        'image',
        layer.where,
        `layer diff ID mismatch: the config says ${layer.diffId}, the uncompressed layer is sha256:${tarHex}; refusing it`,
      );
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      fs.rmSync(tmp, { recursive: true, force: true }); // another unpack of the same layer finished first
    }
    return dir;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw inLayer(err, layer, tmp);
  } finally {
    await tar?.close();
    await blob.close();
  }
}
