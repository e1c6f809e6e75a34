/**
 * The request handlers of the overlay protocol, bound to a Registry. Transport-free:
 * server.ts hands in `on` (register a request handler by method) and `notify`.
 * Every handler validates its params; every failure is a Node-style error that
 * server.ts turns into a ResponseError (see wireErrors.ts).
 */
import { parseDockerInspect, parseDockerLayerDir, type StackSpec } from './overlay/index';
import * as P from '../../shared/src/protocol';
import * as path from 'node:path';
import { createError } from './overlay/errors';
import { exportLayer } from './overlay/ociLayer';
import type { Registry } from './overlays';
import { findFiles, searchText } from './search';
import { ParamReader, invalidParam } from './wireErrors';

export interface Wire {
  on(method: string, handler: (params: unknown) => Promise<unknown>): void;
  notify(method: string, params: unknown): void;
}

/** A StackSpec from untrusted params (the engine validates the directories themselves). */
export function readStackSpec(method: string, v: unknown): StackSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidParam(method, 'a stack spec must be an object');
  const s = v as Record<string, unknown>;
  if (!Array.isArray(s.lower) || !s.lower.every((d) => typeof d === 'string')) throw invalidParam(method, '"lower" must be a list of directories');
  for (const k of ['upper', 'work', 'merged'] as const) {
    if (s[k] !== undefined && s[k] !== null && typeof s[k] !== 'string') throw invalidParam(method, `"${k}" must be a string`);
  }
  if (s.whiteouts !== undefined && !['kernel', 'oci', 'auto'].includes(s.whiteouts as string))
    throw invalidParam(method, '"whiteouts" must be "kernel", "oci" or "auto"');
  const spec: StackSpec = { lower: s.lower as string[] };
  if (typeof s.upper === 'string' && s.upper !== '') spec.upper = s.upper;
  if (typeof s.work === 'string' && s.work !== '') spec.work = s.work;
  if (typeof s.merged === 'string' && s.merged !== '') spec.merged = s.merged;
  if (s.whiteouts) spec.whiteouts = s.whiteouts as StackSpec['whiteouts'];
  if (s.userxattr === true) spec.userxattr = true;
  return spec;
}

export function registerHandlers(wire: Wire, reg: Registry): void {
  const on = (method: string, fn: (r: ParamReader) => Promise<unknown> | unknown): void =>
    wire.on(method, async (params) => (await fn(new ParamReader(method, params))) ?? null);
  const ov = (r: ParamReader) => reg.get(r.str('name'));

  reg.on('changes', (changes) => wire.notify(P.DidChangeFile.method, { changes } satisfies P.DidChangeFile.Params));
  reg.on('copyup', (e) => wire.notify(P.DidCopyUp.method, e satisfies P.DidCopyUp.Params));

  on(P.AddOverlay.method, (r) => reg.add(r.str('name'), readStackSpec(r.method, r.obj('spec'))));
  on(P.RemoveOverlay.method, (r) => reg.remove(r.str('name')));
  wire.on(P.ListOverlays.method, async () => reg.list());

  on(P.Stat.method, (r) => ov(r).stat(r.str('path')));
  on(P.ReadDirectory.method, (r) => ov(r).readDirectory(r.str('path')));
  on(P.ReadDirectories.method, (r) => ov(r).readDirectories(r.str('path'), Math.min(Math.max(r.int('budget'), 0), 100_000)));
  on(P.ReadFile.method, (r) => ov(r).readFile(r.str('path'), r.bool('inline', false)));
  on(P.WriteFile.method, (r) => ov(r).writeFile(r.str('path'), r.bytes('data'), r.bool('create', true), r.bool('overwrite', true)));
  on(P.Delete.method, (r) => ov(r).delete(r.str('path'), r.bool('recursive', false)));
  on(P.Rename.method, (r) => ov(r).rename(r.str('from'), r.str('to'), r.bool('overwrite', false)));
  on(P.CreateDirectory.method, (r) => ov(r).createDirectory(r.str('path')));
  on(P.Copy.method, (r) => ov(r).copy(r.str('from'), r.str('to'), r.bool('overwrite', false)));

  on(P.Open.method, async (r) => ({
    handle: await ov(r).open(r.str('path'), {
      write: r.bool('write', false),
      create: r.bool('create', false),
      truncate: r.bool('truncate', false),
      exclusive: r.bool('exclusive', false),
    }),
  }));
  on(P.Read.method, async (r) => {
    const buf = await ov(r).read(r.int('handle'), r.int('position'), Math.min(r.int('length'), 64 * 1024 * 1024));
    return { data: buf.toString('base64'), bytesRead: buf.length };
  });
  on(P.Write.method, async (r) => ({ bytesWritten: await ov(r).write(r.int('handle'), r.int('position'), r.bytes('data')) }));
  on(P.Close.method, (r) => ov(r).closeHandle(r.int('handle')));

  on(P.Resolve.method, (r) => ov(r).overlay.resolve(r.str('path')));
  on(P.Layers.method, (r) => ov(r).overlay.layers());
  on(P.Diff.method, (r) => ov(r).diff());
  on(P.ResolveLower.method, async (r) => (await ov(r).overlay.lowerResolve(r.str('path'))) ?? null);
  on(P.Revert.method, (r) => ov(r).revert(r.str('path')));
  on(P.ParseStack.method, (r) => {
    const dir = r.optStr('dockerLayerDir');
    if (dir !== undefined) return parseDockerLayerDir(dir);
    const json = r.optStr('dockerInspect');
    if (json !== undefined) return parseDockerInspect(json);
    throw invalidParam(r.method, 'give "dockerLayerDir" or "dockerInspect"');
  });
  on(P.ExportLayer.method, async (r) => {
    const file = r.str('file');
    if (!path.isAbsolute(file)) throw createError('EINVAL', 'export', file, 'the tarball path must be absolute');
    const res = await exportLayer(ov(r).overlay, file, { gzip: r.bool('gzip', /\.(t?gz)$/.test(file)) });
    return { file, entries: res.entries, diffId: res.diffId };
  });

  on(P.FindFiles.method, (r) =>
    findFiles(ov(r).overlay, { include: r.optStr('include'), exclude: r.optStr('exclude'), maxResults: r.int('maxResults', 10000) }),
  );
  on(P.SearchText.method, (r) =>
    searchText(ov(r).overlay, {
      query: r.str('query'),
      isRegExp: r.bool('isRegExp', false),
      isCaseSensitive: r.bool('isCaseSensitive', false),
      isWordMatch: r.bool('isWordMatch', false),
      include: r.optStr('include'),
      exclude: r.optStr('exclude'),
      maxResults: r.int('maxResults', 2000),
    }),
  );
}
