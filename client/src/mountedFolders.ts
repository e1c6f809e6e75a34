/**
 * Mounted workspace folders (setting `overlay.mount`: `auto`, the default, or `never`). A folder
 * of a non-`file` scheme is a virtual workspace to VS Code: language servers, git, tasks,
 * debugging, the terminal and desktop search do not see it. So with `auto` every
 * `overlay://NAME/` folder is replaced by the `file:` directory of a mount of its stack — the
 * server mounts it (server/src/mounting), or it is a container's running overlay, opened at its
 * merged directory. Where no mount is possible the folder stays `overlay://NAME/`, and a notice
 * (once per overlay) says what VS Code cannot do there and what would enable mounting.
 *
 * A window that reopens a workspace whose folder is one of the server's mount points (its name
 * encodes the overlay and the stack's hash: shared/src/mountPoints.ts) has it mounted again at
 * once (or adopts it: a restarted extension host, another window), and the explorer is refreshed
 * if it listed the empty directory meanwhile. A mounted folder closed lets go of its mount (the
 * last window to hold it unmounts). A mount that disappears under the window is reported;
 * editors keep their unsaved text.
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { ourMountPoint } from '../../shared/src/mountPoints';
import { DidChangeMount, Mount, Mounts, Unmount, type OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { configuredOverlays, SECTION } from './config';
import { mountDirOf } from './locations';
import type { Testing } from './testing';
import { OVERLAY_SCHEME, overlayUri } from './uris';

export type MountMode = 'auto' | 'never';

export function mountMode(): MountMode {
  return vscode.workspace.getConfiguration(SECTION).get<string>('mount', 'auto') === 'never' ? 'never' : 'auto';
}

const MOUNT_AGAIN = 'Mount Again';
const OPEN_OVERLAY = 'Open as overlay://';

export class MountedFolders implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private runtimeDir: string | undefined;
  /** Overlays whose "not mounted" notice this window showed. */
  private readonly noticed = new Set<string>();
  /** Why each overlay is not mounted (status item). */
  readonly failures = new Map<string, string>();
  /** Overlays mounted through `mount` (the API): held whether or not a workspace folder shows them. */
  private readonly requested = new Set<string>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after each pass over the folders. */
  readonly onDidSettle = this.changed.event;

  constructor(
    private readonly server: OverlayClient,
    private readonly testing: Testing,
  ) {
    this.disposables.push(
      server.onDidStart(() => this.schedule()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.schedule()),
      vscode.workspace.onDidChangeConfiguration(
        (e) => (e.affectsConfiguration('overlay.mount') || e.affectsConfiguration('overlay.overlays')) && this.schedule(),
      ),
      this.changed,
    );
    server.onNotification(DidChangeMount.type, (e) => void this.onMountChanged(e));
  }

  /** Goes over the workspace folders again (serialized); resolves when done. */
  schedule(): Promise<void> {
    const run = this.queue.then(() => this.update());
    this.queue = run.catch((err: unknown) => this.server.output.warn(`[mount] ${String(err)}`));
    return this.queue.then(() => undefined);
  }

  private async dir(): Promise<string> {
    this.runtimeDir ??= (await this.server.request(Mounts, undefined)).runtimeDir;
    return this.runtimeDir;
  }

  private async update(): Promise<void> {
    if (this.server.state !== 'running') return;
    const mode = mountMode();
    const runtime = await this.dir();
    const folders = vscode.workspace.workspaceFolders ?? [];
    const configured = configuredOverlays();
    for (const f of folders) {
      if (f.uri.scheme === OVERLAY_SCHEME && mode === 'auto' && (configured[f.uri.authority] || this.server.overlays.has(f.uri.authority))) {
        const target = await this.mountFolder(f.uri.authority);
        if (target) await this.replace(f.uri, target, `${f.uri.authority} (mounted)`);
      } else if (f.uri.scheme === 'file') {
        const ours = ourMountPoint(runtime, f.uri.path);
        if (!ours) continue;
        const name = ours.name;
        if (!configured[name] && !this.server.overlays.has(name)) {
          this.notice(
            name,
            `The folder ${f.uri.fsPath} is where overlay "${name}" was mounted, but "overlay.overlays" no longer defines it: it stays an empty folder.`,
          );
          continue;
        }
        if (mode === 'never') {
          await this.replace(f.uri, overlayUri(name, '/'), `${name} (overlay)`);
          continue;
        }
        const had = this.server.overlays.get(name)?.mount?.path === f.uri.fsPath;
        const listedEmpty = !had && !isMounted(f.uri.fsPath);
        const target = await this.mountFolder(name);
        if (!target) await this.replace(f.uri, overlayUri(name, '/'), `${name} (overlay)`);
        else if (target.fsPath !== f.uri.fsPath) await this.replace(f.uri, target, `${name} (mounted)`);
        else if (listedEmpty) await vscode.commands.executeCommand('workbench.files.action.refreshFilesExplorer');
      }
    }
    // Mounts this window holds whose folder was closed (or the overlay removed): let go.
    const open = new Set((vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath));
    for (const n of this.requested) if (!this.server.overlays.has(n)) this.requested.delete(n);
    for (const info of [...this.server.overlays.values()]) {
      if (info.mount && !open.has(info.mount.path) && !this.requested.has(info.name)) {
        this.server.output.info(`[mount] the folder of overlay "${info.name}" is closed: letting go of ${info.mount.path}`);
        await this.server.request(Unmount, { name: info.name }).catch(() => undefined);
        this.server.noteMount(info.name, undefined);
      }
    }
    this.changed.fire();
  }

  /**
   * Mounts open overlay `name` for a caller that opens the directory itself (the API), whatever
   * `overlay.mount` says: the server's mount (made, or adopted), a mount not made by VS Code
   * that serves its upper already (`existing`), or why not (`failure`). Held until `unmount`,
   * whether or not a workspace folder shows it.
   */
  mount(name: string): Promise<Mount.Result> {
    const run = this.queue.then(async () => {
      const r = await this.server.request(Mount, { name });
      if (r.mount) {
        this.requested.add(name);
        this.server.noteMount(name, r.mount);
      }
      return r;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Lets go of a mount `mount` made: unmounted unless a workspace folder (or another window) still holds it. */
  unmount(name: string): Promise<void> {
    const run = this.queue.then(async () => {
      if (!this.requested.delete(name)) return;
      const info = this.server.overlays.get(name);
      if (info && this.folderOf(info)) return;
      await this.server.request(Unmount, { name });
      this.server.noteMount(name, undefined);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Mounts overlay `name` (or finds its existing mount); the `file:` folder to open, or undefined with a notice. */
  private async mountFolder(name: string): Promise<vscode.Uri | undefined> {
    if (!this.server.overlays.has(name)) return undefined; // failed to open: the status item says why
    let r: Mount.Result;
    try {
      r = await this.server.request(Mount, { name });
    } catch (err) {
      r = { failure: String((err as Error).message ?? err) };
    }
    if (r.mount) {
      this.failures.delete(name);
      this.server.noteMount(name, r.mount);
      this.server.output.info(`[mount] overlay "${name}": ${r.mount.adopted ? 'adopted' : 'mounted'} at ${r.mount.path} by ${r.mount.by} (${r.mount.reason})`);
      return vscode.Uri.file(r.mount.path);
    }
    if (r.existing) {
      this.failures.delete(name);
      this.server.output.info(`[mount] overlay "${name}" is mounted already at ${r.existing} (not by VS Code): opened there`);
      return vscode.Uri.file(r.existing);
    }
    const why = r.failure ?? 'not mounted';
    this.failures.set(name, why);
    this.server.output.warn(`[mount] overlay "${name}" stays overlay://${name}/: ${why}`);
    this.notice(
      name,
      `Overlay "${name}" is open as overlay://${name}/, not mounted (${why.replace(/^not mounted: /, '')}). There, language servers, git, tasks, debugging and the terminal do not see its files, and search works through Overlay: Find File / Search Text. Mounting needs the server to run as root (mount -t overlay) or fuse-overlayfs with a usable /dev/fuse; "overlay.mount": "never" keeps overlay:// without this notice.`,
    );
    return undefined;
  }

  private notice(name: string, message: string): void {
    if (this.noticed.has(name)) return;
    this.noticed.add(name);
    this.testing.mountNotices.push({ overlay: name, message });
    void vscode.window.showWarningMessage(message, 'Show Log').then((c) => c && this.server.output.show());
  }

  /** Replaces the workspace folder `old` by `uri`, resolving once VS Code has done it (or could not). */
  private async replace(old: vscode.Uri, uri: vscode.Uri, name: string): Promise<void> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    // By URI, not by a position taken earlier: a replacement before may have dropped a folder.
    const i = folders.findIndex((f) => f.uri.toString() === old.toString());
    if (i < 0 || old.toString() === uri.toString()) return;
    if (folders.some((f) => f.uri.toString() === uri.toString())) {
      // Open already (a second folder of the same stack): drop the duplicate.
      await this.whenChanged(() => vscode.workspace.updateWorkspaceFolders(i, 1));
      return;
    }
    this.server.output.info(`[mount] workspace folder ${folders[i]?.uri.toString()} → ${uri.toString()}`);
    // Folder 0 changing restarts the extension host (and so the server): the mount lingers and the next server adopts it.
    await this.whenChanged(() => vscode.workspace.updateWorkspaceFolders(i, 1, { uri, name }));
  }

  private whenChanged(change: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        sub.dispose();
        resolve();
      }, 10_000);
      const sub = vscode.workspace.onDidChangeWorkspaceFolders(() => {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      });
      if (!change()) {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
  }

  private async onMountChanged(e: DidChangeMount.Params): Promise<void> {
    const before = this.server.overlays.get(e.name)?.mount;
    this.server.noteMount(e.name, e.mount);
    if (e.mount || !before) return;
    this.testing.mountNotices.push({ overlay: e.name, message: e.message });
    const choice = await vscode.window.showWarningMessage(
      `The mount of overlay "${e.name}" went away: ${e.message}. Its folder shows nothing until it is mounted again; editors keep their unsaved text.`,
      MOUNT_AGAIN,
      OPEN_OVERLAY,
    );
    if (choice === MOUNT_AGAIN) await this.schedule();
    else if (choice === OPEN_OVERLAY) {
      await this.replace(vscode.Uri.file(before.path), overlayUri(e.name, '/'), `${e.name} (overlay)`);
    }
  }

  /**
   * The folder to open for overlay `name` (already open on the server): the `file:` directory of
   * its mount when `overlay.mount` is auto and a mount is possible, else overlay://NAME/.
   */
  async folderFor(name: string): Promise<vscode.Uri> {
    const target = mountMode() === 'auto' ? await this.mountFolder(name) : undefined;
    return target ?? overlayUri(name, '/');
  }

  /** The mounted folder of overlay `name` open in this window, if any. */
  folderOf(info: OverlayInfo): string | undefined {
    const dir = mountDirOf(info);
    return dir && (vscode.workspace.workspaceFolders ?? []).some((f) => f.uri.scheme === 'file' && f.uri.fsPath === dir) ? dir : undefined;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** Is something mounted at `dir` (its device differs from its parent's)? */
function isMounted(dir: string): boolean {
  try {
    return fs.statSync(dir).dev !== fs.statSync(`${dir}/..`).dev;
  } catch {
    return false;
  }
}
