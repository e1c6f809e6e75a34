/** The `overlay.overlays` setting: named stacks, relative paths against the workspace file's folder. */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { watchLowerLayersValues, type StackSpec, type WatchLowerLayers } from '../../shared/src/protocol';
import { resolveStackPaths } from '../../shared/src/stackPaths';

export const SECTION = 'overlay';
export const OVERLAYS_KEY = 'overlays';

/** Where relative layer paths resolve: the .code-workspace folder, else the first file: folder, else home. */
export function baseDir(): string {
  const wsFile = vscode.workspace.workspaceFile;
  if (wsFile?.scheme === 'file') return path.dirname(wsFile.fsPath);
  const fileFolder = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file');
  return fileFolder ? fileFolder.uri.fsPath : os.homedir();
}

/** Every configured overlay with absolute paths. */
export function configuredOverlays(): Record<string, StackSpec> {
  const raw = vscode.workspace.getConfiguration(SECTION).get<Record<string, StackSpec>>(OVERLAYS_KEY) ?? {};
  const base = baseDir();
  const out: Record<string, StackSpec> = {};
  for (const [name, spec] of Object.entries(raw)) {
    if (!spec || !Array.isArray(spec.lower)) continue;
    out[name] = resolveStackPaths(spec, base, os.homedir());
  }
  return out;
}

/** Saves a definition: in the workspace file when there is one, else in user settings. */
export async function saveOverlay(name: string, spec: StackSpec): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const target = vscode.workspace.workspaceFile ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  const inspected = config.inspect<Record<string, StackSpec>>(OVERLAYS_KEY);
  const current = (target === vscode.ConfigurationTarget.Workspace ? inspected?.workspaceValue : inspected?.globalValue) ?? {};
  const clean = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as StackSpec;
  await updateSetting(config, OVERLAYS_KEY, { ...current, [name]: clean }, target);
}

/**
 * config.update, tried again for a while when VS Code refuses because another write to the same
 * settings file is in flight ("the file has unsaved changes": the lower guard and the mounted
 * folders write the workspace file too).
 */
export async function updateSetting(config: vscode.WorkspaceConfiguration, key: string, value: unknown, target: vscode.ConfigurationTarget): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await config.update(key, value, target);
      return;
    } catch (err) {
      if (attempt >= 20 || !/unsaved changes/.test(String((err as Error).message ?? err))) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A name not yet used in the setting, derived from `hint`. */
export function freshName(hint: string): string {
  const used = new Set(Object.keys(vscode.workspace.getConfiguration(SECTION).get<object>(OVERLAYS_KEY) ?? {}));
  const stem =
    hint
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'overlay';
  let name = stem;
  for (let i = 2; used.has(name); i++) name = `${stem}-${i}`;
  return name;
}

/** overlay.watchLowerLayers, as set ('auto' when unset or not one of its values). */
export function watchLowerLayersSetting(): WatchLowerLayers {
  const v = vscode.workspace.getConfiguration(SECTION).get<string>('watchLowerLayers');
  return (watchLowerLayersValues as readonly string[]).includes(v ?? '') ? (v as WatchLowerLayers) : 'auto';
}

/** `overlay.staleReaders`: notify (default), log (the output channel only), off (the server does not look). */
export type StaleReadersSetting = 'notify' | 'log' | 'off';

export function staleReadersSetting(): StaleReadersSetting {
  const v = vscode.workspace.getConfiguration(SECTION).get<string>('staleReaders');
  return v === 'log' || v === 'off' ? v : 'notify';
}
