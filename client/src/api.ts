/** What activate() returns: a small API for other extensions and the e2e suite. */
import type * as vscode from 'vscode';
import type { OverlayClient, ServerState } from './client';
import type { LowerGuard } from './lowerGuard';
import type { ReadAhead } from './readAhead';
import type { StaleEditors } from './staleEditors';
import type { ChangesView } from './views/changes';

export interface OverlayApi {
  readonly server: {
    readonly state: ServerState;
    readonly pid: number | undefined;
    readonly restartCount: number;
    whenRunning(timeoutMs?: number): Promise<void>;
    readonly onDidStart: vscode.Event<void>;
  };
  readonly staleEditors: Pick<StaleEditors, 'pending' | 'log' | 'resolve'>;
  /** Lower layers (and live-mount uppers) kept read-only in the editor. */
  readonly lowerGuard: Pick<LowerGuard, 'protectedRoots' | 'lookup' | 'log' | 'editInOverlay' | 'whenSettled'>;
  readonly changes: Pick<ChangesView, 'changes' | 'group' | 'refresh' | 'revert' | 'autoConfirm' | 'provideOriginalResource' | 'provideFileDecoration'>;
  /** Calls of the overlay search providers (when registered). */
  readonly search: { readonly fileSearches: number; readonly textSearches: number; readonly lastTextMatches: number };
  /** Progress notifications shown for writes that took longer than overlay.progressDelayMs. */
  readonly writeProgress: { readonly shown: readonly string[] };
  /** Listings read ahead (readAhead.ts): how many were served from it, round trips made, changes that dropped them, listings held now. */
  readonly readAhead: Pick<ReadAhead, 'hits' | 'fetches' | 'changes' | 'size'>;
  /** Overlays the server has open: name → validated stack. */
  overlays(): ReturnType<OverlayClient['overlays']['get']>[];
}
