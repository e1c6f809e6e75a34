/**
 * Images in the editor. "Overlay: Open Image…": a local Docker image (picked from `docker
 * images`, or a name), a docker/podman save archive or an OCI image layout folder, opened by the
 * server (layers of archives and layouts unpacked once into the layer cache), read-only or with a
 * scratch upper in the user's cache; the image itself is never written. "Overlay: Commit Changes
 * as Image…": the changes summary (A/C/D as docker diff) confirmed in a modal, then the upper
 * committed on the overlay's image (or a container's base image) as an OCI layout, a docker
 * archive, and/or loaded into Docker with a tag.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CommitImage, Diff, OpenImage } from '../../../shared/src/protocol';
import type { OverlayClient } from '../client';
import { freshName } from '../config';
import type { Locations } from '../locations';
import type { MountedFolders } from '../mountedFolders';
import { dockerRows } from './dockerList';
import { addOverlayFolder } from './open';

/** Scripted use of Open Image… (skips the pickers). */
export interface OpenImageArgs {
  ref: string;
  /** An editable overlay with a scratch upper in the user's cache (default: read-only). */
  scratch?: boolean;
  name?: string;
}

/** Scripted use of Commit Changes as Image… (skips the pickers and the confirmation). */
export interface CommitImageArgs {
  name: string;
  tag?: string;
  ociLayout?: string;
  dockerArchive?: string;
  load?: boolean;
  message?: string;
}

const message = (err: unknown): string => String((err as Error).message ?? err);

async function dockerImages(): Promise<{ ref: string; id: string; size: string; created: string }[]> {
  const rows = await dockerRows(['images'], '{{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}\t{{.CreatedSince}}');
  return rows.map(([ref, id, size, created]) => ({ ref: ref.includes('<none>') ? id : ref, id, size, created }));
}

function nameFor(ref: string): string {
  const base = path.basename(ref.replace(/\/+$/, '')).replace(/\.tar$/, '');
  return freshName(`image-${base.replace(/[:@]/g, '-')}`);
}

export async function openImage(server: OverlayClient, mounted: MountedFolders, args?: OpenImageArgs): Promise<string | undefined> {
  let ref = args?.ref;
  let scratch = args?.scratch;
  if (ref === undefined) {
    const images = await dockerImages();
    type Item = vscode.QuickPickItem & { ref?: string; pick?: 'archive' | 'layout' | 'name' };
    const items: Item[] = [
      ...images.map((i) => ({ label: `$(package) ${i.ref}`, description: `${i.id} · ${i.size} · ${i.created}`, ref: i.ref })),
      { label: '$(file-zip) Choose an image archive (docker save / podman save .tar)…', pick: 'archive' },
      { label: '$(folder) Choose an OCI image layout folder…', pick: 'layout' },
      { label: '$(edit) Type a Docker image name…', pick: 'name' },
    ];
    const picked = await vscode.window.showQuickPick(items, {
      title: images.length ? 'Overlay: open an image' : 'Overlay: open an image (no local Docker images listed)',
    });
    if (!picked) return undefined;
    if (picked.ref) ref = picked.ref;
    else if (picked.pick === 'name') ref = await vscode.window.showInputBox({ title: 'Docker image name or id', placeHolder: 'debian:bookworm' });
    else {
      const archive = picked.pick === 'archive';
      const uris = await vscode.window.showOpenDialog({
        title: archive ? 'Image archive' : 'OCI image layout folder',
        canSelectFiles: archive,
        canSelectFolders: !archive,
        filters: archive ? { 'Image archive': ['tar'] } : undefined,
        openLabel: 'Open Image',
      });
      ref = uris?.[0]?.fsPath;
    }
    if (!ref) return undefined;
    const mode = await vscode.window.showQuickPick(
      [
        { label: 'Read-only', description: 'browse, search, compare layers', scratch: false },
        { label: 'Editable', description: 'edits go to a scratch upper in your cache; the image is never written', scratch: true },
      ],
      { title: `Open ${ref}` },
    );
    if (!mode) return undefined;
    scratch = mode.scratch;
  }
  const name = args?.name ?? nameFor(ref);
  try {
    const info = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Opening image ${ref} (unpacking layers not in the cache yet)…` },
      () => server.request(OpenImage, { name, ref, scratch: !!scratch }),
    );
    return await addOverlayFolder(server, mounted, name, info.stack);
  } catch (err) {
    void vscode.window.showErrorMessage(`Cannot open the image ${ref}: ${message(err)}`);
    return undefined;
  }
}

function overlayOf(server: OverlayClient, locations: Locations, arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg instanceof vscode.Uri) return locations.resolve(arg)?.name;
  const root = (arg as vscode.SourceControl | undefined)?.rootUri;
  if (root) return locations.resolve(root)?.name;
  const editor = vscode.window.activeTextEditor?.document.uri;
  const at = editor && locations.resolve(editor);
  if (at && server.overlays.get(at.name)?.image) return at.name;
  return undefined;
}

/** The changes summary as docker diff prints it, at most `max` lines. */
function summary(changes: Diff.Change[], max = 40): string {
  const lines = changes.slice(0, max).map((c) => `${c.kind} ${c.path}`);
  if (changes.length > max) lines.push(`… and ${changes.length - max} more`);
  return lines.join('\n');
}

export async function commitChangesAsImage(
  server: OverlayClient,
  locations: Locations,
  arg?: unknown,
  scripted?: CommitImageArgs,
): Promise<CommitImage.Result | undefined> {
  let name = scripted?.name ?? overlayOf(server, locations, arg);
  if (!name) {
    const candidates = [...server.overlays.values()].filter((o) => o.image && !o.readOnly);
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage('No open image or container overlay has an upper layer to commit (Overlay: Open Image… and choose Editable).');
      return undefined;
    }
    name =
      candidates.length === 1
        ? candidates[0].name
        : (
            await vscode.window.showQuickPick(
              candidates.map((o) => ({ label: o.name, description: o.image?.ref })),
              { title: 'Commit the changes of which overlay?' },
            )
          )?.label;
    if (!name) return undefined;
  }
  const info = server.overlays.get(name);
  if (!info?.image) {
    void vscode.window.showErrorMessage(
      `The overlay ${name} is not an image or a container: open one with Overlay: Open Image… or Open Docker Container Layers….`,
    );
    return undefined;
  }
  if (info.readOnly) {
    void vscode.window.showErrorMessage(`The overlay ${name} is read-only: there are no changes to commit.`);
    return undefined;
  }
  let params: CommitImage.Params;
  if (scripted) params = scripted;
  else {
    const changes = await server.request(Diff, { name });
    const base = info.image.container ? `container ${info.image.container.slice(0, 12)} (image ${info.image.ref})` : info.image.ref;
    const go = await vscode.window.showInformationMessage(
      changes.length === 0
        ? `${name} has no changes: commit an image with an empty layer on ${base}?`
        : `Commit ${changes.length} changes of ${name} as a new image on ${base}?`,
      { modal: true, detail: summary(changes) },
      'Commit…',
    );
    if (go !== 'Commit…') return undefined;
    const hasDocker = await new Promise<boolean>((resolve) => execFile('docker', ['version'], { timeout: 5000 }, (err) => resolve(!err)));
    const outputs = await vscode.window.showQuickPick(
      [
        ...(hasDocker ? [{ label: 'Load into Docker', picked: true, out: 'load' as const }] : []),
        { label: 'Write an OCI image layout folder…', picked: !hasDocker, out: 'layout' as const },
        { label: 'Write a docker load archive (.tar)…', out: 'archive' as const },
      ],
      { title: 'Commit: where to', canPickMany: true },
    );
    if (!outputs?.length) return undefined;
    const tag = await vscode.window.showInputBox({
      title: 'Commit: image name',
      value: `${name}:latest`,
      validateInput: (v) =>
        v === '' || /^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(v) ? undefined : 'NAME[:TAG]: lower case, digits, . _ - /',
    });
    if (tag === undefined) return undefined;
    params = { name, tag: tag || undefined, load: outputs.some((o) => o.out === 'load') };
    const folder = vscode.workspace.workspaceFile?.scheme === 'file' ? vscode.Uri.joinPath(vscode.workspace.workspaceFile, '..') : undefined;
    if (outputs.some((o) => o.out === 'layout')) {
      const u = await vscode.window.showSaveDialog({
        title: 'OCI image layout folder (new)',
        defaultUri: folder && vscode.Uri.joinPath(folder, `${name}-image`),
        saveLabel: 'Write Here',
      });
      if (!u) return undefined;
      params.ociLayout = u.fsPath;
    }
    if (outputs.some((o) => o.out === 'archive')) {
      const u = await vscode.window.showSaveDialog({
        title: 'docker load archive',
        defaultUri: folder && vscode.Uri.joinPath(folder, `${name}-image.tar`),
        filters: { 'Image archive': ['tar'] },
      });
      if (!u) return undefined;
      params.dockerArchive = u.fsPath;
    }
  }
  try {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Committing ${name} as an image…` }, () =>
      server.request(CommitImage, params),
    );
    const where = [
      params.tag && params.load ? `loaded as ${params.tag}` : params.load ? 'loaded into Docker' : undefined,
      params.ociLayout,
      params.dockerArchive,
    ]
      .filter(Boolean)
      .join(', ');
    if (!scripted) void vscode.window.showInformationMessage(`Committed image ${r.id.slice(0, 19)}… (${where}).`);
    return r;
  } catch (err) {
    void vscode.window.showErrorMessage(`Commit failed: ${message(err)}`);
    return undefined;
  }
}
