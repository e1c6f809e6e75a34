/**
 * Opening overlays: folders picked by the user, a mounted overlay (from
 * /proc/self/mountinfo), a Docker container's layers (docker inspect, or an overlay2 layer
 * directory), and single read-only layers. Each saves the definition in `overlay.overlays`
 * and adds a workspace folder.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ParseStack, type StackSpec } from '../../../shared/src/protocol';
import type { OverlayClient } from '../client';
import { freshName, saveOverlay } from '../config';
import { overlayMounts } from '../mounts';
import type { MountedFolders } from '../mountedFolders';
import { layerUri } from '../uris';
import { dockerRows } from './dockerList';

/** Arguments for scripted use of the open commands (skip the pickers). */
export interface OpenFoldersArgs {
  lower: string[];
  upper?: string;
  work?: string;
  name?: string;
  whiteouts?: 'kernel' | 'oci' | 'auto';
}

/**
 * Opens `spec` as overlay `name` on the server, saves the definition and adds its workspace
 * folder: mounted where `overlay.mount` allows and a mount is possible (a container's running
 * overlay at its own merged directory), else overlay://NAME/.
 */
export async function addOverlayFolder(server: OverlayClient, mounted: MountedFolders, name: string, spec: StackSpec): Promise<string | undefined> {
  try {
    await server.addOverlay(name, spec);
  } catch (err) {
    void vscode.window.showErrorMessage(`Cannot open the overlay: ${String((err as Error).message ?? err)}`);
    return undefined;
  }
  await saveOverlay(name, spec);
  const folders = vscode.workspace.workspaceFolders ?? [];
  const uri = await mounted.folderFor(name);
  if (!folders.some((f) => f.uri.toString() === uri.toString())) {
    // Wait until the folder is really added: the workspace file is being rewritten until
    // then, and a settings write meanwhile (the next open command) would be refused.
    const added = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sub.dispose();
        resolve();
      }, 10_000);
      const sub = vscode.workspace.onDidChangeWorkspaceFolders((e) => {
        if (e.added.some((f) => f.uri.toString() === uri.toString())) {
          clearTimeout(timer);
          sub.dispose();
          resolve();
        }
      });
    });
    const label = `${name} (${uri.scheme === 'file' ? 'mounted' : 'overlay'})`;
    if (vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri, name: label })) await added;
  }
  return name;
}

async function pickDirs(title: string, many: boolean): Promise<string[] | undefined> {
  const picked = await vscode.window.showOpenDialog({ title, canSelectFiles: false, canSelectFolders: true, canSelectMany: many, openLabel: 'Select' });
  return picked?.map((u) => u.fsPath);
}

export async function openFolders(server: OverlayClient, mounted: MountedFolders, args?: OpenFoldersArgs): Promise<string | undefined> {
  if (args?.lower?.length) {
    return addOverlayFolder(server, mounted, args.name ?? freshName(path.basename(args.upper ?? args.lower[0])), {
      lower: args.lower,
      upper: args.upper,
      work: args.work,
      whiteouts: args.whiteouts ?? 'auto',
    });
  }
  const lower: string[] = [];
  for (;;) {
    const dirs = await pickDirs(
      lower.length === 0
        ? 'Overlay: top-most lower layer'
        : `Overlay: lower layer ${lower.length} (below ${path.basename(lower[lower.length - 1])}) — Cancel when done`,
      false,
    );
    if (!dirs?.length) break;
    lower.push(dirs[0]);
  }
  if (lower.length === 0) return undefined;
  const upperChoice = await vscode.window.showQuickPick(['Choose an upper (writable) directory…', 'Read-only (no upper)'], { title: 'Overlay: upper layer' });
  if (!upperChoice) return undefined;
  let upper: string | undefined;
  let work: string | undefined;
  if (upperChoice.startsWith('Choose')) {
    upper = (await pickDirs('Overlay: upper directory', false))?.[0];
    if (!upper) return undefined;
    const workChoice = await vscode.window.showQuickPick([`Create ${path.basename(upper)}.work next to it`, 'Choose a work directory…'], {
      title: 'Overlay: work directory (empty, same filesystem as upper)',
    });
    if (!workChoice) return undefined;
    if (workChoice.startsWith('Create')) {
      work = `${upper.replace(/\/+$/, '')}.work`;
      fs.mkdirSync(work, { recursive: true });
    } else {
      work = (await pickDirs('Overlay: work directory', false))?.[0];
      if (!work) return undefined;
    }
  }
  const name = await vscode.window.showInputBox({
    title: 'Overlay: name',
    value: freshName(path.basename(upper ?? lower[0])),
    validateInput: (v) => (/^[a-z0-9][a-z0-9.-]*$/i.test(v) ? undefined : 'letters, digits, . and -'),
  });
  if (!name) return undefined;
  return addOverlayFolder(server, mounted, name, { lower, upper, work, whiteouts: 'auto' });
}

/** `mergedDir`: the mount point to open (skips the picker). */
export async function openMount(server: OverlayClient, mounted: MountedFolders, mergedDir?: string): Promise<string | undefined> {
  const mounts = await overlayMounts(server);
  if (mounts.length === 0) {
    void vscode.window.showInformationMessage('No overlay mounts in /proc/self/mountinfo.');
    return undefined;
  }
  if (mergedDir !== undefined) {
    const m = mounts.find((x) => x.merged === path.resolve(mergedDir));
    if (!m) {
      void vscode.window.showErrorMessage(`${mergedDir} is not an overlay mount point (see /proc/self/mountinfo).`);
      return undefined;
    }
    return addOverlayFolder(server, mounted, freshName(path.basename(m.merged)), m.spec);
  }
  const picked = await vscode.window.showQuickPick(
    mounts.map((m) => ({
      label: m.merged,
      description: m.spec.upper ? `upper ${m.spec.upper}` : 'read-only',
      detail: `${m.spec.lower.length} lower: ${m.spec.lower.join(' : ')}`,
      m,
    })),
    { title: 'Overlay: open a mounted overlay' },
  );
  if (!picked) return undefined;
  return addOverlayFolder(server, mounted, freshName(path.basename(picked.m.merged)), picked.m.spec);
}

/** `docker inspect` of a container, parsed by the server's stack parser. */
function dockerInspect(server: OverlayClient, id: string): Promise<StackSpec> {
  return new Promise<string>((resolve, reject) => {
    execFile('docker', ['inspect', '--type', 'container', id], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  }).then((json) => server.request(ParseStack, { dockerInspect: json }));
}

async function dockerContainers(): Promise<{ id: string; name: string; image: string }[]> {
  const rows = await dockerRows(['ps', '-a'], '{{.ID}}\t{{.Names}}\t{{.Image}}');
  return rows.map(([id, name, image]) => ({ id, name, image }));
}

/** A Docker overlay2 layer dir (<root>/<id>/{diff,lower,work,merged}), parsed by the server's stack parser. */
function specFromLayerDir(server: OverlayClient, dir: string): Promise<StackSpec> {
  return server.request(ParseStack, { dockerLayerDir: dir });
}

/** `target`: a container id or name for `docker inspect`, or an overlay2 layer directory (skips the pickers). */
export async function openDocker(server: OverlayClient, mounted: MountedFolders, target?: string): Promise<string | undefined> {
  if (target !== undefined) {
    try {
      const isDir = path.isAbsolute(target) && fs.existsSync(path.join(target, 'diff'));
      const spec = isDir ? await specFromLayerDir(server, target) : await dockerInspect(server, target);
      return addOverlayFolder(server, mounted, freshName(isDir ? `docker-${path.basename(target).slice(0, 12)}` : target), spec);
    } catch (err) {
      void vscode.window.showErrorMessage(`Cannot read the container's layers: ${String((err as Error).message ?? err)}`);
      return undefined;
    }
  }
  const containers = await dockerContainers();
  const items: (vscode.QuickPickItem & { id?: string })[] = containers.map((c) => ({ label: c.name, description: c.image, detail: c.id, id: c.id }));
  items.push({ label: '$(folder) Choose an overlay2 layer directory…' });
  const picked = await vscode.window.showQuickPick(items, {
    title: containers.length ? 'Overlay: Docker container' : 'Overlay: Docker CLI not answering — choose a layer directory',
  });
  if (!picked) return undefined;
  let spec: StackSpec;
  let hint: string;
  try {
    if (picked.id) {
      spec = await dockerInspect(server, picked.id);
      hint = picked.label;
    } else {
      const dir = (await pickDirs('Overlay: Docker overlay2 layer directory (/var/lib/docker/overlay2/<id>)', false))?.[0];
      if (!dir) return undefined;
      spec = await specFromLayerDir(server, dir);
      hint = `docker-${path.basename(dir).slice(0, 12)}`;
    }
  } catch (err) {
    void vscode.window.showErrorMessage(`Cannot read the container's layers: ${String((err as Error).message ?? err)}`);
    return undefined;
  }
  return addOverlayFolder(server, mounted, freshName(hint), spec);
}

export async function openLayer(server: OverlayClient, name?: string, layer?: 'upper' | number): Promise<void> {
  if (name === undefined || layer === undefined) {
    const picks = [...server.overlays.values()].flatMap((info) => [
      ...(info.stack.upper ? [{ label: `${info.name}: upper`, detail: info.stack.upper, name: info.name, layer: 'upper' as const }] : []),
      ...info.stack.lower.map((d, i) => ({ label: `${info.name}: lower ${i}`, detail: d, name: info.name, layer: i })),
    ]);
    const picked = await vscode.window.showQuickPick(picks, { title: 'Overlay: open a single layer (read-only)' });
    if (!picked) return;
    name = picked.name;
    layer = picked.layer;
  }
  const folders = vscode.workspace.workspaceFolders ?? [];
  vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri: layerUri(name, layer, '/'), name: `${name} layer ${layer} (read-only)` });
}
