/** File and text search over the merged tree of an overlay (what VS Code's search needs). */
import type { Overlay } from './overlay/index';
import type { FindFiles, SearchText } from '../../shared/src/protocol';
import { createError } from './overlay/errors';

const MAX_TEXT_FILE = 4 * 1024 * 1024;
const MAX_PREVIEW = 1000;

/** A glob ('**', '*', '?', '{a,b}', '[ab]') over a root-relative path, as a RegExp. A glob without '/' matches the base name anywhere. */
export function globToRegExp(glob: string): RegExp {
  let g = glob.startsWith('/') ? glob.slice(1) : glob;
  if (!g.includes('/') && !g.startsWith('**')) g = '**/' + g;
  let re = '';
  let braces = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*') {
      if (g[i + 1] === '*') {
        i++;
        if (g[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else if (c === '[') {
      const end = g.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re +=
          '[' +
          g
            .slice(i + 1, end)
            .replace(/^!/, '^')
            .replace(/\\/g, '\\\\') +
          ']';
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** Every regular file of the merged tree (symlinked directories are not descended). */
function* walk(overlay: Overlay, dir = '/'): Generator<string> {
  let entries;
  try {
    entries = overlay.readdirSync(dir);
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = dir === '/' ? '/' + e.name : dir + '/' + e.name;
    if (e.type === 'd') yield* walk(overlay, p);
    else if (e.type === 'f') yield p;
  }
}

function filter(include?: string, exclude?: string): (p: string) => boolean {
  const inc = include ? globToRegExp(include) : undefined;
  const exc = exclude ? globToRegExp(exclude) : undefined;
  return (p) => {
    const rel = p.slice(1);
    return (!inc || inc.test(rel)) && (!exc || !exc.test(rel));
  };
}

export function findFiles(overlay: Overlay, q: Omit<FindFiles.Params, 'name'>): FindFiles.Result {
  const max = q.maxResults ?? 10000;
  const keep = filter(q.include, q.exclude);
  const paths: string[] = [];
  for (const p of walk(overlay)) {
    if (!keep(p)) continue;
    if (paths.length >= max) return { paths, limitHit: true };
    paths.push(p);
  }
  return { paths, limitHit: false };
}

export async function searchText(overlay: Overlay, q: Omit<SearchText.Params, 'name'>): Promise<SearchText.Result> {
  const max = q.maxResults ?? 2000;
  let source = q.isRegExp ? q.query : q.query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (q.isWordMatch) source = `\\b(?:${source})\\b`;
  let re: RegExp;
  try {
    re = new RegExp(source, q.isCaseSensitive ? 'g' : 'gi');
  } catch (err) {
    throw createError('EINVAL', 'search', q.query, `invalid regular expression: ${(err as Error).message}`);
  }
  if (q.query === '') return { matches: [], limitHit: false };
  const keep = filter(q.include, q.exclude);
  const matches: SearchText.Match[] = [];
  for (const p of walk(overlay)) {
    if (!keep(p)) continue;
    let buf: Buffer;
    try {
      if (overlay.statSync(p).size > MAX_TEXT_FILE) continue;
      buf = await overlay.readFile(p);
    } catch {
      continue;
    }
    if (buf.subarray(0, 8192).includes(0)) continue; // binary
    const lines = buf.toString('utf8').split(/\r?\n/);
    for (let line = 0; line < lines.length; line++) {
      const text = lines[line];
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        if (matches.length >= max) return { matches, limitHit: true };
        matches.push({ path: p, line, character: m.index, length: m[0].length, preview: text.slice(0, MAX_PREVIEW) });
      }
    }
  }
  return { matches, limitHit: false };
}
