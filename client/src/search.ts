/**
 * Search of the merged tree, served by the overlay server (overlay/findFiles,
 * overlay/searchText).
 *
 * VS Code's search service answers a custom scheme only through a FileSearchProvider /
 * TextSearchProvider, and for a workspace whose folders all lack one, workspace.findFiles,
 * Quick Open and the Search panel WAIT for a provider forever ("No search provider
 * registered for scheme: overlay, waiting"). Registering one is a proposed API
 * (fileSearchProvider, textSearchProvider): stock VS Code refuses it for a marketplace
 * extension, code-server (which enables proposed APIs for every extension) and VS Code
 * started with --enable-proposed-api allow it. So: the providers are registered when the
 * host allows it (then Quick Open, the Search panel and findFiles work on overlay
 * folders), and the commands "Overlay: Find File…" / "Overlay: Search Text…" work
 * everywhere. Nothing in this extension calls workspace.findFiles on an overlay folder.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FindFiles, SearchText } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import type { Testing } from './testing';
import { OVERLAY_SCHEME, overlayUri } from './uris';

function overlayNames(server: OverlayClient): string[] {
  const inWorkspace = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === OVERLAY_SCHEME).map((f) => f.uri.authority);
  const names = inWorkspace.length ? inWorkspace : [...server.overlays.keys()];
  return [...new Set(names)];
}

/** A plain word becomes a substring glob; a pattern with glob characters is used as is. */
function toGlob(query: string): string {
  return /[*?{[]/.test(query) ? query : `**/*${query}*`;
}

/** Files matching `query` in every overlay folder of the workspace. */
export async function findFiles(server: OverlayClient, query: string, maxResults = 200): Promise<vscode.Uri[]> {
  const out: vscode.Uri[] = [];
  for (const name of overlayNames(server)) {
    const r = await server.request(FindFiles, { name, include: toGlob(query), maxResults });
    out.push(...r.paths.map((p) => overlayUri(name, p)));
  }
  return out;
}

export interface TextMatch {
  uri: vscode.Uri;
  range: vscode.Range;
  preview: string;
}

export async function searchText(server: OverlayClient, query: string, options: Partial<SearchText.Params> = {}): Promise<TextMatch[]> {
  const out: TextMatch[] = [];
  for (const name of overlayNames(server)) {
    const r = await server.request(SearchText, { maxResults: 2000, ...options, name, query });
    for (const m of r.matches)
      out.push({ uri: overlayUri(name, m.path), range: new vscode.Range(m.line, m.character, m.line, m.character + m.length), preview: m.preview });
  }
  return out;
}

/** "Overlay: Find File…": a quick pick that searches as you type. With `query`, returns the URIs without UI. */
export async function findFileCommand(server: OverlayClient, query?: string): Promise<vscode.Uri[] | undefined> {
  if (typeof query === 'string') return findFiles(server, query);
  const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { uri: vscode.Uri }>();
  qp.title = 'Overlay: Find File';
  qp.placeholder = 'File name or glob in the merged tree (e.g. greet, **/*.md)';
  qp.matchOnDescription = true;
  let seq = 0;
  const refresh = async (value: string) => {
    const mine = ++seq;
    qp.busy = true;
    try {
      const uris = await findFiles(server, value || '**/*');
      if (mine !== seq) return;
      qp.items = uris.map((uri) => ({
        label: path.posix.basename(uri.path),
        description: `${uri.authority}:${path.posix.dirname(uri.path)}`,
        uri,
        alwaysShow: true,
      }));
    } catch (err) {
      qp.items = [];
      qp.title = `Overlay: Find File — ${String((err as Error).message ?? err)}`;
    } finally {
      if (mine === seq) qp.busy = false;
    }
  };
  qp.onDidChangeValue((v) => void refresh(v));
  qp.onDidAccept(() => {
    const item = qp.selectedItems[0];
    if (item) void vscode.window.showTextDocument(item.uri);
    qp.hide();
  });
  qp.onDidHide(() => qp.dispose());
  qp.show();
  await refresh('');
  return undefined;
}

/** "Overlay: Search Text…": asks for a query, lists matching lines in a quick pick. With `query`, returns the matches without UI. */
export async function searchTextCommand(server: OverlayClient, query?: string): Promise<TextMatch[] | undefined> {
  if (typeof query === 'string') return searchText(server, query);
  const q = await vscode.window.showInputBox({
    title: 'Overlay: Search Text',
    prompt: 'Text to find in the merged tree (prefix with / for a regular expression)',
  });
  if (!q) return undefined;
  const isRegExp = q.startsWith('/') && q.length > 1;
  const matches = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Overlay: searching for ${q}…`, cancellable: false },
    () => searchText(server, isRegExp ? q.slice(1) : q, { isRegExp }),
  );
  const picked = await vscode.window.showQuickPick(
    matches.map((m) => ({ label: m.preview.trim(), description: `${m.uri.authority}:${m.uri.path}:${m.range.start.line + 1}`, match: m })),
    { title: `${matches.length} match(es) for ${q}`, matchOnDescription: true },
  );
  if (picked) await vscode.window.showTextDocument(picked.match.uri, { selection: picked.match.range });
  return undefined;
}

// ------------------------------------------------------------ proposed search providers

/** The shapes of the (proposed) fileSearchProvider / textSearchProvider APIs used here. */
interface FileSearchOptions {
  folder: vscode.Uri;
  includes: string[];
  excludes: string[];
  maxResults?: number;
}
interface TextSearchQuery {
  pattern: string;
  isRegExp?: boolean;
  isCaseSensitive?: boolean;
  isWordMatch?: boolean;
}
interface TextSearchMatch {
  uri: vscode.Uri;
  ranges: vscode.Range[];
  preview: { text: string; matches: vscode.Range[] };
}
interface SearchRegistration {
  registerFileSearchProvider?(
    scheme: string,
    provider: { provideFileSearchResults(q: { pattern: string }, o: FileSearchOptions, t: vscode.CancellationToken): Promise<vscode.Uri[]> },
  ): vscode.Disposable;
  registerTextSearchProvider?(
    scheme: string,
    provider: {
      provideTextSearchResults(
        q: TextSearchQuery,
        o: FileSearchOptions,
        p: vscode.Progress<TextSearchMatch>,
        t: vscode.CancellationToken,
      ): Promise<{ limitHit: boolean }>;
    },
  ): vscode.Disposable;
}

function globOf(globs: string[]): string | undefined {
  const g = globs.filter(Boolean);
  if (g.length === 0) return undefined;
  return g.length === 1 ? g[0] : `{${g.join(',')}}`;
}

/** Quick Open's pattern is fuzzy: every character, in order, case-insensitively. */
function fuzzy(pattern: string): (p: string) => boolean {
  const chars = pattern.replace(/\s+/g, '').toLowerCase();
  if (!chars) return () => true;
  return (p) => {
    const s = p.toLowerCase();
    let i = 0;
    for (let j = 0; j < s.length && i < chars.length; j++) if (s[j] === chars[i]) i++;
    return i === chars.length;
  };
}

/**
 * Registers the overlay scheme's file and text search providers when this VS Code allows
 * the proposed API. Returns what happened, for the log.
 */
/** How often VS Code asked the providers, and the last text search's match count (status, e2e). */

export function registerSearchProviders(server: OverlayClient, subscriptions: vscode.Disposable[], testing: Testing): string {
  const ws = vscode.workspace as unknown as SearchRegistration;
  if (typeof ws.registerFileSearchProvider !== 'function' || typeof ws.registerTextSearchProvider !== 'function') {
    return 'search providers: not in this VS Code API; use Overlay: Find File… / Search Text…';
  }
  try {
    subscriptions.push(
      ws.registerFileSearchProvider(OVERLAY_SCHEME, {
        async provideFileSearchResults(query, options, token) {
          testing.search.fileSearches++;
          const name = options.folder.authority;
          const r = await server.request(
            FindFiles,
            { name, include: globOf(options.includes), exclude: globOf(options.excludes), maxResults: query.pattern ? 20_000 : options.maxResults },
            token,
          );
          const match = fuzzy(query.pattern);
          const paths = r.paths.filter(match);
          return (options.maxResults ? paths.slice(0, options.maxResults) : paths).map((p) => overlayUri(name, p));
        },
      }),
      ws.registerTextSearchProvider(OVERLAY_SCHEME, {
        async provideTextSearchResults(query, options, progress, token) {
          testing.search.textSearches++;
          const name = options.folder.authority;
          const r = await server.request(
            SearchText,
            {
              name,
              query: query.pattern,
              isRegExp: query.isRegExp,
              isCaseSensitive: query.isCaseSensitive,
              isWordMatch: query.isWordMatch,
              include: globOf(options.includes),
              exclude: globOf(options.excludes),
              maxResults: options.maxResults,
            },
            token,
          );
          // one result per line, with every match of that line
          const lines = new Map<string, TextSearchMatch>();
          for (const m of r.matches) {
            const key = `${m.path}:${m.line}`;
            let line = lines.get(key);
            if (!line) {
              line = { uri: overlayUri(name, m.path), ranges: [], preview: { text: m.preview, matches: [] } };
              lines.set(key, line);
            }
            line.ranges.push(new vscode.Range(m.line, m.character, m.line, m.character + m.length));
            line.preview.matches.push(new vscode.Range(0, m.character, 0, m.character + m.length));
          }
          for (const line of lines.values()) progress.report(line);
          testing.search.lastTextMatches = r.matches.length;
          return { limitHit: r.limitHit };
        },
      }),
    );
    return 'search providers: registered (Quick Open, the Search panel and workspace.findFiles search overlay folders)';
  } catch (err) {
    return `search providers: refused by this VS Code (${String((err as Error).message ?? err).split('\n')[0]}); use Overlay: Find File… / Search Text…`;
  }
}
