/** What activate() returns: a small API for other extensions and the e2e suite. */
import type * as vscode from 'vscode';
import type { OverlayInfo } from '../../shared/src/protocol';
import type { ServerState } from './client';
import type { LowerGuard } from './lowerGuard';
import type { MountedFolders } from './mountedFolders';
import type { ReadAhead } from './readAhead';
import type { StaleEditors } from './staleEditors';
import type { StaleReaders } from './staleReaders';
import type { Testing } from './testing';
import type { ChangesView } from './views/changes';

export interface OverlayApi {
  readonly server: {
    readonly state: ServerState;
    readonly pid: number | undefined;
    readonly restartCount: number;
    whenRunning(timeoutMs?: number): Promise<void>;
    readonly onDidStart: vscode.Event<void>;
  };
  readonly staleEditors: Pick<StaleEditors, 'pending' | 'resolve'>;
  /** The actions of a stale-reader notice (its notification's buttons), on the notices of `testing.staleReaders`. */
  readonly staleReaders: Pick<StaleReaders, 'act'>;
  /** Lower layers (and live-mount uppers) kept read-only in the editor. */
  readonly lowerGuard: Pick<LowerGuard, 'protectedRoots' | 'lookup' | 'editInOverlay' | 'whenSettled'>;
  readonly changes: Pick<ChangesView, 'changes' | 'group' | 'refresh' | 'revert' | 'provideOriginalResource' | 'provideFileDecoration'>;
  /** What the extension records for its end-to-end suite (testing.ts). */
  readonly testing: Testing;
  /** Listings read ahead (readAhead.ts): how many were served from it, round trips made, changes that dropped them, listings held now. */
  readonly readAhead: Pick<ReadAhead, 'hits' | 'fetches' | 'changes' | 'size'>;
  /**
   * Mounted workspace folders (mountedFolders.ts): go over the folders again, why an overlay is
   * not mounted; and an open overlay mounted (overlay/mount, answered as `Mount.Result` of the
   * shared protocol) for a caller that opens its directory itself, held until `unmount`.
   */
  readonly mountedFolders: Pick<MountedFolders, 'schedule' | 'failures' | 'onDidSettle' | 'mount' | 'unmount'>;
  /** Overlays the server has open: name → validated stack. */
  overlays(): OverlayInfo[];
}
