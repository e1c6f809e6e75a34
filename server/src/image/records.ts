/**
 * Which image a stack's lower layers are: remembered when an image is opened (or a container's
 * stack parsed, whose base is its image) in a small record beside the layer cache,
 * `$XDG_CACHE_HOME/overlayws/images/<sha256 of the lower dirs>.json`, so that an overlay
 * reopened from its saved definition (plain layer directories) still knows its image — what
 * Layers of This File labels layers with and what Commit Changes as Image… commits on.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageInfo } from '../../../shared/src/protocol';
import { cacheRoot } from './layerCache';

/** A layer directory as the engine names it once the stack is resolved: its real path. */
function real(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

function recordFile(lower: readonly string[], root: string): string {
  const key = createHash('sha256').update(lower.map(real).join('\0')).digest('hex');
  return path.join(path.dirname(root), 'images', `${key}.json`);
}

export function rememberImage(lower: readonly string[], info: ImageInfo, root = cacheRoot()): void {
  const file = recordFile(lower, root);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  fs.renameSync(tmp, file);
}

/** The image these lower layers are, when one was opened or parsed as such. */
export function imageFor(lower: readonly string[], root = cacheRoot()): ImageInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(recordFile(lower, root), 'utf8')) as ImageInfo;
    return typeof info?.ref === 'string' && typeof info.id === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}
