/**
 * The sides under test: how a stack of the suite is opened so that `workspace.fs` reaches
 * it, and the URI of its root. Each side is compared with a `file:` copy of the same merged
 * tree. A mounted overlay folder (the stack mounted with the kernel or fuse-overlayfs and
 * opened as a `file:` folder) is one more entry in SIDES: `stackOf` gives its layers (upper
 * and work included), `open` mounts each stack and returns `file:` URIs of the merged
 * directories, `close` unmounts. The exceptions that hold for overlay:// only say so
 * (`scheme`); the final check reads the layers through a read-only kernel mount of their
 * own while the side's stacks are still open.
 */
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
  /** The stack this side opens over a suite stack's directories. */
  stackOf(s: StackLayers): StackDirs;
  /** Opens every stack (all at once) and returns the URI of each one's root, in order. */
  open(stacks: readonly StackLayers[], tag: string): Promise<vscode.Uri[]>;
  /** Closes what `open` opened. */
  close(): Promise<void>;
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

/** Every side the suite runs on. */
export const SIDES: readonly Side[] = [
  new OverlaySettingsSide('overlay:// (upper and two lowers)', false),
  new OverlaySettingsSide('overlay:// read-only (three lowers, no upper)', true),
];
