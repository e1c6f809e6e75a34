/**
 * The sides under test: how a stack of the suite is opened so that `workspace.fs` reaches
 * it, and the URI of its root. Each side is compared with a `file:` copy of the same merged
 * tree. The mounted sides (MountedSide: the stack mounted by the server with the kernel or
 * fuse-overlayfs, opened as a `file:` folder) give their layers in `stackOf` (upper and work
 * included), mount each stack in `open` and return the `file:` URIs of the mount points, and
 * unmount in `close`. The exceptions that hold for overlay:// only say so (`scheme`), those
 * of one mounter say which (`mountedBy`); the final check reads the layers through a
 * read-only mount of their own (kernel; fuse-overlayfs for what fuse-overlayfs wrote) while
 * the side's stacks are still open.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { overlayApi, waitFor } from '../harness';
import type { StackLayers } from './layers';

export interface StackDirs {
  /** Top-most first. */
  readonly lower: string[];
  readonly upper?: string;
  readonly work?: string;
}

export interface Side {
  /** Shown in test titles and reports. */
  readonly label: string;
  /** No upper layer: every write is refused. */
  readonly readOnly: boolean;
  /** Scheme of its roots. */
  readonly scheme: string;
  /** A mounted side: what mounts its stacks (the exceptions name what each does differently). */
  readonly mountedBy?: MountedBy;
  /** The stack this side opens over a suite stack's directories. */
  stackOf(s: StackLayers): StackDirs;
  /** Opens every stack (all at once) and returns the URI of each one's root, in order. */
  open(stacks: readonly StackLayers[], tag: string): Promise<vscode.Uri[]>;
  /** Closes what `open` opened. */
  close(): Promise<void>;
  /** Why this side cannot run here (the suite skips it, saying so), or undefined. */
  unavailable?(): string | undefined;
}

const SECTION = 'overlay';
const KEY = 'overlays';

/**
 * overlay://NAME/ folders defined the way a user defines them: entries of the setting
 * `overlay.overlays` (in the .code-workspace file when one is open, else in user settings),
 * added in one update, and removed again by `removeAll`.
 */
export class OverlaySettings {
  private names: string[] = [];

  private target(): vscode.ConfigurationTarget {
    return vscode.workspace.workspaceFile ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  }

  private current(): Record<string, unknown> {
    const inspected = vscode.workspace.getConfiguration(SECTION).inspect<Record<string, unknown>>(KEY);
    return { ...((this.target() === vscode.ConfigurationTarget.Workspace ? inspected?.workspaceValue : inspected?.globalValue) ?? {}) };
  }

  /** Opens each stack as overlay `<tag>-<i>` and returns the URIs of their roots, in order. */
  async add(stacks: readonly StackDirs[], tag: string): Promise<vscode.Uri[]> {
    const api = await overlayApi();
    const names = stacks.map((_, i) => `${tag}-${i}`);
    this.names.push(...names);
    const value = this.current();
    stacks.forEach((s, i) => (value[names[i]] = { ...s, whiteouts: 'kernel' }));
    await vscode.workspace.getConfiguration(SECTION).update(KEY, value, this.target());
    await waitFor(() => names.every((n) => api.overlays().some((o) => o.name === n)), {
      timeoutMs: 60_000,
      what: `the overlay server opening ${names.length} overlays (${names[0]}…)`,
    });
    return names.map((n) => vscode.Uri.from({ scheme: 'overlay', authority: n, path: '/' }));
  }

  async removeAll(): Promise<void> {
    if (!this.names.length) return;
    const api = await overlayApi();
    const value = this.current();
    for (const n of this.names) delete value[n];
    await vscode.workspace.getConfiguration(SECTION).update(KEY, Object.keys(value).length ? value : undefined, this.target());
    const names = new Set(this.names);
    this.names = [];
    await waitFor(() => !api.overlays().some((o) => names.has(o.name)), { timeoutMs: 30_000, what: 'the overlays closed' });
  }
}

/** Overlay folders from the setting; read-only ones get no upper (the upper's content becomes the top lower). */
class OverlaySettingsSide implements Side {
  readonly scheme = 'overlay';
  private readonly settings = new OverlaySettings();

  constructor(
    readonly label: string,
    readonly readOnly: boolean,
  ) {}

  stackOf(s: StackLayers): StackDirs {
    return this.readOnly ? { lower: [s.upper, ...s.lower] } : { lower: s.lower, upper: s.upper, work: s.work };
  }

  open(stacks: readonly StackLayers[], tag: string): Promise<vscode.Uri[]> {
    return this.settings.add(
      stacks.map((s) => this.stackOf(s)),
      `fsdiff-${tag}`,
    );
  }

  close(): Promise<void> {
    return this.settings.removeAll();
  }
}

export type MountedBy = 'kernel' | 'fuse-overlayfs';

/** Restarts the overlay server with OVERLAYWS_MOUNT_WITH (the env var the server reads; undefined: its own choice) and waits for it. */
async function restartServerMountingWith(by: MountedBy | undefined): Promise<void> {
  if (process.env.OVERLAYWS_MOUNT_WITH === by) return;
  const api = await overlayApi();
  if (by) process.env.OVERLAYWS_MOUNT_WITH = by;
  else delete process.env.OVERLAYWS_MOUNT_WITH;
  const pid = api.server.pid;
  const started = new Promise<void>((resolve) => {
    const sub = api.server.onDidStart(() => {
      sub.dispose();
      resolve();
    });
  });
  await vscode.commands.executeCommand('overlay.restartServer');
  await started;
  await api.server.whenRunning(30_000);
  assert.notEqual(api.server.pid, pid, 'a new server process runs');
}

/**
 * Mounted overlay folders: each stack opened from the setting (as overlay:// is), then mounted
 * through the extension's API (overlay/mount: the product's own mounting, server/src/mounting)
 * and used as the `file:` directory of the mount, as a mounted workspace folder is. As root the
 * server mounts with the kernel; the fuse-overlayfs side restarts the server with
 * OVERLAYWS_MOUNT_WITH=fuse-overlayfs (what the benchmarks use to measure each way) and back.
 */
class MountedSide implements Side {
  readonly scheme = 'file';
  readonly readOnly = false;
  private readonly settings = new OverlaySettings();
  private names: string[] = [];

  constructor(
    readonly label: string,
    readonly by: MountedBy,
  ) {}

  get mountedBy(): MountedBy {
    return this.by;
  }

  unavailable(): string | undefined {
    if (this.by === 'kernel') return undefined; // the suite's own check (a kernel mount) holds for it
    const found = (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, 'fuse-overlayfs')));
    if (!found) return 'fuse-overlayfs is not installed';
    try {
      fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
    } catch {
      return '/dev/fuse is not usable here';
    }
    return undefined;
  }

  stackOf(s: StackLayers): StackDirs {
    return { lower: s.lower, upper: s.upper, work: s.work };
  }

  async open(stacks: readonly StackLayers[], tag: string): Promise<vscode.Uri[]> {
    await restartServerMountingWith(this.by === 'fuse-overlayfs' ? this.by : undefined);
    const api = await overlayApi();
    const roots = await this.settings.add(
      stacks.map((s) => this.stackOf(s)),
      `fsdiff-${tag}-${this.by}`,
    );
    this.names = roots.map((r) => r.authority);
    // The pass over the workspace folders the setting's change started is over before mounting.
    await api.mountedFolders.schedule();
    const dirs: vscode.Uri[] = [];
    for (const name of this.names) {
      const r = await api.mountedFolders.mount(name);
      assert.ok(r.mount, `overlay ${name} is not mounted: ${r.failure ?? `a mount not made by VS Code serves it at ${r.existing}`}`);
      assert.equal(r.mount.by, this.by, `overlay ${name} mounted by ${r.mount.by} (${r.mount.reason}), not by ${this.by}`);
      assert.equal(r.mount.adopted, false, `overlay ${name}: its stack was mounted already at ${r.mount.path}`);
      dirs.push(vscode.Uri.file(r.mount.path));
    }
    return dirs;
  }

  async close(): Promise<void> {
    const api = await overlayApi();
    const mounts = this.names.map((n) => api.overlays().find((o) => o.name === n)?.mount?.path);
    for (const name of this.names) await api.mountedFolders.unmount(name);
    this.names = [];
    await this.settings.removeAll();
    await restartServerMountingWith(undefined);
    const left = mounts.filter((p): p is string => !!p && fs.existsSync(p) && fs.statSync(p).dev !== fs.statSync(path.dirname(p)).dev);
    assert.deepEqual(left, [], 'every mount of the side is unmounted');
  }
}

/** Every side the suite runs on. */
export const SIDES: readonly Side[] = [
  new OverlaySettingsSide('overlay:// (upper and two lowers)', false),
  new OverlaySettingsSide('overlay:// read-only (three lowers, no upper)', true),
  new MountedSide('mounted (kernel)', 'kernel'),
  new MountedSide('mounted (fuse-overlayfs)', 'fuse-overlayfs'),
];
