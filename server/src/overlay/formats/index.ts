/**
 * The registry of whiteout formats. Adding a format is one module (a FormatModule)
 * and one registration here; everything else reaches formats through this file.
 */
import type * as fs from 'node:fs';
import * as path from 'node:path';
import { createError } from '../errors';
import { fromPlainPath, readdirEntries } from '../names';
import type { FormatOptions, Format, FormatModule } from './format';
import { kernel } from './kernel';
import { oci } from './oci';

export type { EntryVerdict, FormatOptions, LayerDir, RawEvent, RawEventKind, Scratch, Format, FormatModule } from './format';

/** Registered formats in order: the first is the default when nothing in the layers tells. */
const formats = new Map<string, FormatModule>();

/** Register a format; returns a function that removes it again. A name may be registered once. */
export function registerWhiteoutFormat(m: FormatModule): () => void {
  if (formats.has(m.name) || m.name === 'auto') throw createError('EEXIST', 'register', m.name, `a whiteout format named "${m.name}" exists already`);
  formats.set(m.name, m);
  return () => {
    if (formats.get(m.name) === m) formats.delete(m.name);
  };
}

registerWhiteoutFormat(kernel);
registerWhiteoutFormat(oci);

/** The names of the registered formats, the default first. */
export function whiteoutFormatNames(): string[] {
  return [...formats.keys()];
}

/** "a, b or c", as error messages list choices. */
export function listChoices(names: readonly string[], quote = (s: string): string => s): string {
  const q = names.map(quote);
  return q.length <= 1 ? q.join('') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** The format `name` as one stack uses it; EINVAL naming the choices when there is no such format. */
export function whiteoutFormat(name: string, opts: FormatOptions): Format {
  const m = formats.get(name);
  if (!m) throw createError('EINVAL', 'stack', String(name), `whiteouts must be ${listChoices([...whiteoutFormatNames(), 'auto'], (s) => `"${s}"`)}`);
  return m.create(opts);
}

/**
 * Look at what the layers contain, breadth first within `budget` entries: the first entry a
 * format recognises decides (formats asked in registration order); nothing telling means the
 * default (the first registered, kernel).
 */
export function detectWhiteoutFormat(dirs: string[], budget = 50000): string {
  const modules = [...formats.values()];
  const queue = dirs.map((d) => fromPlainPath(path.resolve(d)));
  let seen = 0;
  while (queue.length > 0 && seen < budget) {
    const dir = queue.shift() as string;
    let entries: fs.Dirent[];
    try {
      entries = readdirEntries(dir);
    } catch {
      continue;
    }
    for (const e of entries) {
      seen++;
      for (const m of modules) if (m.detect(e, dir)) return m.name;
      if (e.isDirectory()) queue.push(dir + '/' + e.name);
    }
  }
  return modules[0].name;
}
