/**
 * "Overlay: Layers of This File": every layer that holds the path — its content, a whiteout, or
 * an opaque directory that hides it — top to bottom (overlay/history), in a quick pick: a version
 * opens read-only (overlay-layer:), its Compare button diffs it against any other version or the
 * current merged file.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { History, type LayerRef } from '../../../shared/src/protocol';
import type { OverlayClient } from '../client';
import { layerUri, overlayUri } from '../uris';
import type { Locations } from '../locations';

/** A version to open or compare: a layer's own copy, or 'merged' (the file as the overlay shows it). */
export type Version = LayerRef | 'merged';

/** For scripted use (no pickers): open one version, or compare two. */
export interface LayersOfFileAction {
  open?: Version;
  compare?: [Version, Version];
}

function sizeText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function layerLabel(layer: Version, imageLayers?: readonly (string | undefined)[]): string {
  if (layer === 'merged') return 'Current (merged)';
  if (layer === 'upper') return 'upper';
  const what = imageLayers?.[layer];
  return what ? `layer ${layer}: ${what}` : `layer ${layer}`;
}

function describe(e: History.Entry): string {
  switch (e.kind) {
    case 'file':
      return [`file, ${sizeText(e.size ?? 0)}`, e.sha256 ? `sha256 ${e.sha256.slice(0, 12)}…` : undefined].filter(Boolean).join(' · ');
    case 'dir':
      return 'directory';
    case 'symlink':
      return `symlink → ${e.target ?? '?'}`;
    case 'whiteout':
      return 'whiteout: deleted here (hides the layers below)';
    case 'opaque':
      return 'opaque directory: replaced as a whole here (hides the layers below)';
  }
}

const opens = (e: History.Entry): boolean => e.kind === 'file' || e.kind === 'symlink';

function versionUri(name: string, p: string, v: Version): vscode.Uri {
  return v === 'merged' ? overlayUri(name, p) : layerUri(name, v, p);
}

async function openVersion(name: string, p: string, v: Version): Promise<void> {
  await vscode.commands.executeCommand('vscode.open', versionUri(name, p, v), { preview: true });
}

async function compareVersions(name: string, p: string, a: Version, b: Version, labels: (v: Version) => string): Promise<void> {
  const title = `${path.posix.basename(p)} (${labels(a)} ↔ ${labels(b)})`;
  await vscode.commands.executeCommand('vscode.diff', versionUri(name, p, a), versionUri(name, p, b), title);
}

const COMPARE: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('diff'), tooltip: 'Compare with…' };

type Item = vscode.QuickPickItem & { version?: Version; entry?: History.Entry };

export async function layersOfFile(
  server: OverlayClient,
  locations: Locations,
  arg?: unknown,
  action?: LayersOfFileAction,
): Promise<History.Entry[] | undefined> {
  const uri =
    arg instanceof vscode.Uri ? arg : ((arg as vscode.SourceControlResourceState | undefined)?.resourceUri ?? vscode.window.activeTextEditor?.document.uri);
  const at = uri && locations.resolve(uri);
  if (!at) {
    void vscode.window.showInformationMessage('Layers of This File works on files of an overlay folder (overlay:// or mounted).');
    return undefined;
  }
  const name = at.name;
  const info = server.overlays.get(name);
  if (!info) {
    void vscode.window.showErrorMessage(`The overlay ${name} is not open on the server.`);
    return undefined;
  }
  const p = at.path;
  let history: History.Entry[];
  try {
    history = await server.request(History, { name, path: p });
  } catch (err) {
    void vscode.window.showErrorMessage(`Layers of ${p}: ${String((err as Error).message ?? err)}`);
    return undefined;
  }
  const labels = (v: Version): string => layerLabel(v, info.image?.layers);
  if (action?.open !== undefined) {
    await openVersion(name, p, action.open);
    return history;
  }
  if (action?.compare) {
    await compareVersions(name, p, action.compare[0], action.compare[1], labels);
    return history;
  }

  const items: Item[] = history.map((e) => ({
    label: `$(${e.kind === 'whiteout' ? 'trash' : e.kind === 'opaque' ? 'eye-closed' : e.kind === 'dir' ? 'folder' : 'file'}) ${labels(e.layer)}`,
    description: describe(e),
    version: opens(e) ? e.layer : undefined,
    entry: e,
    buttons: opens(e) ? [COMPARE] : [],
  }));
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = `Layers of ${p}, top to bottom`;
  qp.placeholder = 'Open a version (read-only), or Compare it with another';
  qp.items = items;
  qp.matchOnDescription = true;
  const picked = await new Promise<{ item: Item; compare: boolean } | undefined>((resolve) => {
    qp.onDidAccept(() => resolve(qp.selectedItems[0] ? { item: qp.selectedItems[0], compare: false } : undefined));
    qp.onDidTriggerItemButton((e) => resolve({ item: e.item, compare: true }));
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  qp.dispose();
  if (!picked) return history;
  const v = picked.item.version;
  if (v === undefined) {
    void vscode.window.showInformationMessage(`${labels(picked.item.entry?.layer ?? 'upper')}: ${picked.item.description ?? ''} — nothing to open.`);
    return history;
  }
  if (!picked.compare) {
    await openVersion(name, p, v);
    return history;
  }
  const others: Item[] = [
    ...(history.some((e) => e.layer === 'upper' && opens(e)) ? [] : [{ label: `$(layers) ${labels('merged')}`, version: 'merged' as const }]),
    ...items.filter((i) => i.version !== undefined && i.version !== v).map((i) => ({ ...i, buttons: [] })),
  ];
  const other = await vscode.window.showQuickPick(others, { title: `Compare ${labels(v)} of ${path.posix.basename(p)} with…` });
  if (other?.version !== undefined) await compareVersions(name, p, other.version, v, labels);
  return history;
}
