/**
 * What the extension records only so that its end-to-end suite can see it happen: one
 * small surface, handed to the parts that record and exported through the API as
 * `testing`. Every log keeps only its newest entries, so a long session does not grow it.
 * Nothing in the extension reads it back, except `autoConfirm`.
 */
import type { GuardRecord } from './lowerGuard';
import type { RedirectRecord } from './staleEditors';
import type { StaleReaderActionRecord, StaleReaderNotice } from './staleReaders';

/** The newest `max` entries of something that happened. */
export class RecentLog<T> {
  private readonly items: T[] = [];
  constructor(private readonly max = 200) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }

  /** Oldest first. */
  get entries(): readonly T[] {
    return this.items;
  }
}

export class Testing {
  /** Titles of the progress notifications shown for writes slower than overlay.progressDelayMs. */
  readonly progressShown = new RecentLog<string>(50);
  /** What the stale-editor redirector did (staleEditors.ts). */
  readonly staleEditors = new RecentLog<RedirectRecord>();
  /** Copy-ups whose old copy other processes still read, as the user was told (staleReaders.ts). */
  readonly staleReaders = new RecentLog<StaleReaderNotice>();
  /** What the stale-reader actions (SIGHUP, container restart) did. */
  readonly staleReaderActions = new RecentLog<StaleReaderActionRecord>(50);
  /** What the lower guard did (lowerGuard.ts). */
  readonly lowerGuard = new RecentLog<GuardRecord>();
  /** Calls of the overlay search providers, when registered (search.ts). */
  readonly search = { fileSearches: 0, textSearches: 0, lastTextMatches: -1 };
  /** Notices about mounts: an overlay that could not be mounted, a mount that went away (mountedFolders.ts). */
  readonly mountNotices = new RecentLog<{ overlay: string; message: string }>(50);
  /** Messages of reverts that failed (views/changes.ts). */
  readonly revertFailures = new RecentLog<string>(20);
  /** What VS Code asked the overlay provider to watch, and when it let go (watches.ts). */
  readonly watches = new RecentLog<{ op: 'watch' | 'unwatch'; name: string; path: string; recursive: boolean }>(500);
  /** Modal confirmations (Revert in the changes view, SIGHUP and restart of stale readers) take their default answer without asking. */
  autoConfirm = false;
}
