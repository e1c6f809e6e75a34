/**
 * The request handlers of the overlay protocol, bound to a Registry: one per request of
 * shared/src/protocol.ts, typed by it (RequestHandlers), so a request without a handler,
 * or a handler with the wrong params or result, does not compile. Params arrive checked
 * (server.ts runs each request's own check); every failure is a Node-style error that
 * server.ts turns into a ResponseError (wireErrors.ts).
 */
import * as path from 'node:path';
import type { RequestHandlers } from '../../shared/src/catalog';
import * as P from '../../shared/src/protocol';
import { createError } from './overlay/errors';
import { parseDockerInspect, parseDockerLayerDir } from './overlay/index';
import { exportLayer } from './overlay/oci';
import type { CopyUpNotices } from './copyUpNotices';
import type { Registry } from './registry';
import { commitOverlay, containerImage } from './image/commitOverlay';
import { scratchUpper } from './image/layerCache';
import { rememberImage } from './image/records';
import { imageStack } from './image/stack';
import { findFiles, searchText } from './search';

/** Read-ahead answers at most this many entries in one round trip. */
const MAX_READ_AHEAD = 100_000;
/** One overlay/read answers at most this many bytes. */
const MAX_READ = 64 * 1024 * 1024;

export function requestHandlers(reg: Registry, copyUps: Pick<CopyUpNotices, 'scanHolders'>): RequestHandlers {
  const ov = (p: { name: string }) => reg.get(p.name);
  return {
    [P.AddOverlay.method]: (p) => reg.add(p.name, p.spec),
    [P.RemoveOverlay.method]: async (p) => (await reg.remove(p.name), null),
    [P.ListOverlays.method]: () => reg.list(),
    [P.Mount.method]: (p) => reg.mount(p.name),
    [P.Unmount.method]: async (p) => (await reg.unmount(p.name), null),
    [P.Mounts.method]: () => reg.mountsList(),

    [P.Stat.method]: (p) => ov(p).stat(p.path),
    [P.ReadDirectory.method]: (p) => ov(p).readDirectory(p.path),
    [P.ReadDirectories.method]: (p) => ov(p).readDirectories(p.path, Math.min(p.budget, MAX_READ_AHEAD)),
    [P.ReadFile.method]: (p) => ov(p).readFile(p.path, p.inline ?? false),
    [P.WriteFile.method]: async (p) => (await ov(p).writeFile(p.path, Buffer.from(p.data, 'base64'), p.create, p.overwrite), null),
    [P.Delete.method]: async (p) => (await ov(p).delete(p.path, p.recursive), null),
    [P.Rename.method]: async (p) => (await ov(p).rename(p.from, p.to, p.overwrite), null),
    [P.CreateDirectory.method]: async (p) => (await ov(p).createDirectory(p.path), null),
    [P.Copy.method]: async (p) => (await ov(p).copy(p.from, p.to, p.overwrite), null),

    [P.Open.method]: async (p) => ({
      handle: await ov(p).open(p.path, { write: p.write ?? false, create: p.create ?? false, truncate: p.truncate ?? false, exclusive: p.exclusive ?? false }),
    }),
    [P.Read.method]: async (p) => {
      const buf = await ov(p).read(p.handle, p.position, Math.min(p.length, MAX_READ));
      return { data: buf.toString('base64'), bytesRead: buf.length };
    },
    [P.Write.method]: async (p) => ({ bytesWritten: await ov(p).write(p.handle, p.position, Buffer.from(p.data, 'base64')) }),
    [P.Close.method]: async (p) => (await ov(p).closeHandle(p.handle), null),

    [P.Resolve.method]: (p) => ov(p).overlay.resolve(p.path),
    [P.Layers.method]: (p) => ov(p).overlay.layers(),
    [P.Diff.method]: (p) => ov(p).diff(),
    [P.History.method]: (p) => ov(p).overlay.history(p.path),
    [P.ResolveLower.method]: async (p) => (await ov(p).overlay.lowerResolve(p.path)) ?? null,
    [P.Revert.method]: async (p) => (await ov(p).revert(p.path, p.throughMount ?? false), null),
    [P.ParseStack.method]: (p) => {
      if (p.dockerLayerDir !== undefined) return parseDockerLayerDir(p.dockerLayerDir);
      if (p.dockerInspect !== undefined) {
        const spec = parseDockerInspect(p.dockerInspect);
        const image = containerImage(JSON.parse(p.dockerInspect));
        if (image) rememberImage(spec.lower, image);
        return spec;
      }
      throw createError('EINVAL', P.ParseStack.method, undefined, 'malformed params: give "dockerLayerDir" or "dockerInspect"');
    },
    [P.OpenImage.method]: async (p) => {
      if (p.scratch && (p.upper !== undefined || p.work !== undefined))
        throw createError('EINVAL', P.OpenImage.method, p.ref, 'give scratch or upper and work, not both');
      const rw = p.scratch ? scratchUpper(p.name) : { upper: p.upper, work: p.work };
      const image = await imageStack(p.ref, rw);
      return reg.add(p.name, image.spec);
    },
    [P.CommitImage.method]: async (p) => {
      for (const f of [p.dockerArchive, p.ociLayout])
        if (f !== undefined && !path.isAbsolute(f)) throw createError('EINVAL', 'commit', f, 'output paths must be absolute');
      const o = ov(p);
      const r = await commitOverlay(o.overlay, o.image, {
        tag: p.tag,
        dockerArchive: p.dockerArchive,
        ociLayout: p.ociLayout,
        load: p.load,
        comment: p.message,
      });
      return { id: r.id, diffId: r.diffId, loaded: r.loaded };
    },
    [P.ExportLayer.method]: async (p) => {
      if (!path.isAbsolute(p.file)) throw createError('EINVAL', 'export', p.file, 'the tarball path must be absolute');
      const res = await exportLayer(ov(p).overlay, p.file, { gzip: p.gzip ?? /\.(t?gz)$/.test(p.file) });
      return { file: p.file, entries: res.entries, diffId: res.diffId };
    },

    [P.Watch.method]: async (p) => (await ov(p).watcher.watch(p.id, p.path, p.recursive), null),
    [P.Unwatch.method]: async (p) => (await ov(p).watcher.unwatch(p.id), null),
    [P.Watching.method]: (p) => ov(p).watcher.state(),
    [P.Configure.method]: async (p) => {
      if (p.scanHolders !== undefined) copyUps.scanHolders = p.scanHolders;
      await reg.configure(p);
      return null;
    },

    [P.FindFiles.method]: (p) => findFiles(ov(p).overlay, { include: p.include, exclude: p.exclude, maxResults: p.maxResults ?? 10000 }),
    [P.SearchText.method]: (p) =>
      searchText(ov(p).overlay, {
        query: p.query,
        isRegExp: p.isRegExp ?? false,
        isCaseSensitive: p.isCaseSensitive ?? false,
        isWordMatch: p.isWordMatch ?? false,
        include: p.include,
        exclude: p.exclude,
        maxResults: p.maxResults ?? 2000,
      }),
  };
}
