/**
 * An image as the lower layers of a stack: from an archive or a layout, each layer from the
 * layer cache (unpacked and verified once, layerCache.ts); from the local Docker daemon, the
 * image's own layer directories (`docker image inspect` GraphDriver.Data: UpperDir is its top
 * layer's diff directory, LowerDir the ones below), read-only. Either way the image is never
 * written: edits go to an upper of the caller's.
 */
import * as path from 'node:path';
import { createError, type StackSpec } from '../overlay';
import type { ImageInfo } from '../../../shared/src/protocol';
import { dockerInspectImage, readImageFiles, refKind, type Image, type ImageConfig } from './image';
import { CACHE_WHITEOUTS, cacheRoot, ensureLayer } from './layerCache';
import { rememberImage } from './records';

export interface ImageStack {
  spec: StackSpec;
  info: ImageInfo;
  /** The image read from files (archive, layout); undefined for a Docker daemon's image. */
  image?: Image;
}

/** created_by of each non-empty history entry, top-most layer first (as StackSpec.lower). */
export function layerHistory(config: ImageConfig): (string | undefined)[] {
  const made = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? h.comment);
  const out = config.rootfs.diff_ids.map((_, i) => (made.length === config.rootfs.diff_ids.length ? made[i] : undefined));
  return out.reverse();
}

/** The stack of image `ref` with the caller's `upper`/`work` (none: read-only). */
export async function imageStack(ref: string, rw: { upper?: string; work?: string } = {}, root = cacheRoot()): Promise<ImageStack> {
  if (refKind(ref) === 'docker') {
    const inspect = await dockerInspectImage(ref);
    const d = inspect.GraphDriver?.Data;
    if (inspect.GraphDriver?.Name !== 'overlay2' || !d?.UpperDir)
      throw createError(
        'ENOTSUP',
        'image',
        ref,
        `the Docker image is not stored by overlay2 (GraphDriver ${inspect.GraphDriver?.Name ?? 'none'}): save it (docker save) and open the archive`,
      );
    const lower = [d.UpperDir, ...(d.LowerDir ?? '').split(':').filter(Boolean)];
    const info: ImageInfo = { ref, source: 'docker', id: inspect.Id, layers: lower.map(() => undefined) };
    rememberImage(lower, info, root);
    return { spec: { lower, whiteouts: 'kernel', ...rw }, info };
  }
  const image = readImageFiles(ref);
  const dirs: string[] = [];
  // One at a time: each streams with bounded memory; the cache shares layers between images.
  for (const layer of image.layers) dirs.push(await ensureLayer(layer, root));
  const lower = dirs.reverse();
  const info: ImageInfo = { ref: path.resolve(ref), source: image.source, id: image.id, layers: layerHistory(image.config) };
  rememberImage(lower, info, root);
  return { spec: { lower, whiteouts: CACHE_WHITEOUTS, ...rw }, info, image };
}
