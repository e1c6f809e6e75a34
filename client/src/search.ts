/**
 * Search of the merged tree, served by the overlay server (overlay/findFiles,
 * overlay/searchText). VS Code 1.139 does not let a normal extension register a
 * FileSearchProvider/TextSearchProvider (proposed API), so Quick Open, the Search panel
 * and workspace.findFiles never get answers for overlay: folders — findFiles waits for a
 * provider that never comes. These commands are the way in; nothing in this extension
 * calls workspace.findFiles on an overlay folder.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { FindFiles, SearchText } from '../../server/src/protocol';
import type { OverlayClient } from './client';
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
    const r = await server.request(FindFiles.type, { name, include: toGlob(query), maxResults });
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
    const r = await server.request(SearchText.type, { maxResults: 2000, ...options, name, query });
    for (const m of r.matches) out.push({ uri: overlayUri(name, m.path), range: new vscode.Range(m.line, m.character, m.line, m.character + m.length), preview: m.preview });
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
      qp.items = uris.map((uri) => ({ label: path.posix.basename(uri.path), description: `${uri.authority}:${path.posix.dirname(uri.path)}`, uri, alwaysShow: true }));
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
  const q = await vscode.window.showInputBox({ title: 'Overlay: Search Text', prompt: 'Text to find in the merged tree (prefix with / for a regular expression)' });
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
