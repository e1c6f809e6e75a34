/**
 * Commit an open overlay's upper on top of the image its lowers are (ImageInfo: from --image,
 * Open Image…, or a container's docker inspect), for the CLI and the server alike. The base is
 * re-read from where it was opened (an archive or layout must still hold the same image: its id
 * is checked) or saved from Docker. A running container is paused — frozen, not stopped, as
 * `docker commit` does by default — while its upper is read, so the layer is one consistent
 * moment of it; without Docker to pause it, files written during the read may be caught half-way.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ImageInfo } from '../../../shared/src/protocol';
import { createError, type Overlay } from '../overlay';
import { commitImage, dockerSave, type CommitOptions, type CommitResult } from './commit';
import { readImageFiles, type Image } from './image';

const run = promisify(execFile);

async function baseImage(info: ImageInfo): Promise<{ base: Image; done: () => void }> {
  if (info.source !== 'docker') {
    const base = readImageFiles(info.ref);
    if (base.id !== info.id) throw createError('ESTALE', 'commit', info.ref, `the image there is ${base.id} now, not ${info.id} the overlay was opened from`);
    return { base, done: () => undefined };
  }
  const saved = await dockerSave(info.ref);
  try {
    return { base: { ...readImageFiles(saved.file), ref: info.ref }, done: saved.remove };
  } catch (err) {
    saved.remove();
    throw err;
  }
}

async function isRunning(container: string): Promise<boolean> {
  try {
    const out = (await run('docker', ['inspect', '--type', 'container', '--format', '{{.State.Running}} {{.State.Paused}}', container])).stdout.trim();
    return out === 'true false';
  } catch {
    return false;
  }
}

async function paused<T>(container: string, read: () => Promise<T>): Promise<T> {
  await run('docker', ['pause', container]);
  try {
    return await read();
  } finally {
    await run('docker', ['unpause', container]);
  }
}

export async function commitOverlay(ov: Overlay, info: ImageInfo | undefined, opts: Omit<CommitOptions, 'around'>): Promise<CommitResult> {
  if (!ov.stack.upper) throw createError('EROFS', 'commit', undefined, 'the overlay has no upper layer to commit');
  if (!info)
    throw createError('EINVAL', 'commit', undefined, 'the overlay is not an image or a container: open it with --image / Open Image…, or from docker inspect');
  const { base, done } = await baseImage(info);
  try {
    const container = info.container !== undefined && (await isRunning(info.container)) ? info.container : undefined;
    return await commitImage(
      base,
      ov.stack.upper,
      { whiteouts: ov.stack.whiteouts, userxattr: ov.stack.userxattr },
      {
        ...opts,
        around: container ? (read) => paused(container, read) : undefined,
      },
    );
  } finally {
    done();
  }
}

/** The image of a container's `docker inspect` JSON: its base image, and the container to pause while committing. */
export function containerImage(inspect: unknown): ImageInfo | undefined {
  const c = (Array.isArray(inspect) ? inspect[0] : inspect) as { Id?: string; Image?: string; Config?: { Image?: string } } | undefined;
  if (typeof c?.Image !== 'string' || c.Image === '' || typeof c.Id !== 'string') return undefined;
  return { ref: c.Image, source: 'docker', id: c.Image, layers: [], container: c.Id };
}
