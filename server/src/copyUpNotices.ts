/**
 * Copy-up notifications, with the processes that still read the stale copy (holders/).
 * Each copy-up — by the engine, or one the watcher saw — is queued; once no request is
 * being answered (a write answers as soon as its copy-up is done), everything queued is
 * scanned in one pass over /proc, in a worker thread (holders/scanner.ts: the event loop goes
 * on answering requests meanwhile), and notified in the order it happened. Copy-ups made
 * during a scan wait for the next pass.
 */
import * as path from 'node:path';
import type { DidCopyUp } from '../../shared/src/protocol';
import type { CopiedFile } from './holders/index';
import { HolderScanner } from './holders/scanner';

/** Where a copy-up's lower copy is: its layer, and the merged directory of the stack's kernel mount. */
export interface CopyUpWhere {
  layerRoot?: string;
  merged?: string;
}

/** A queued scan waits at most this long for requests to stop (a busy client still gets its notifications). */
const MAX_WAIT_MS = 1000;

export class CopyUpNotices {
  /** Look for holders (Configure's `scanHolders`); without, copy-ups are notified as they come. */
  scanHolders = true;
  private queue: { params: DidCopyUp.Params; where: CopyUpWhere }[] = [];
  private draining = false;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  /** The scan runs in a worker thread (dist/holders/scanWorker.js beside dist/server.js; out/server/src/holders/ in a build). */
  private readonly scanner = new HolderScanner(path.join(__dirname, 'holders', 'scanWorker.js'), async () => {
    await new Promise((resolve) => setImmediate(resolve));
    await this.idle();
  });

  constructor(
    private readonly send: (params: DidCopyUp.Params) => void,
    private readonly log: (message: string) => void,
  ) {}

  /** A request is being answered… */
  begin(): void {
    this.inflight++;
  }

  /** …and has been. */
  end(): void {
    if (--this.inflight > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  push(params: DidCopyUp.Params, where: CopyUpWhere): void {
    this.queue.push({ params, where });
    if (!this.draining) void this.drain();
  }

  private idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, MAX_WAIT_MS);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (this.scanHolders) {
          await this.idle();
          // After the answer of the request that made the copy-up has been written.
          await new Promise((resolve) => setImmediate(resolve));
        }
        const batch = this.queue.splice(0);
        if (this.scanHolders) {
          try {
            const files: CopiedFile[] = batch.map(({ params, where }) => ({
              path: params.path,
              lower: where.layerRoot ? { realPath: params.lowerPath, layerRoot: where.layerRoot } : undefined,
              merged: where.merged,
            }));
            const report = await this.scanner.scan(files);
            batch.forEach((b, i) => {
              b.params.holders = report.holders[i];
              b.params.uninspectable = report.uninspectable;
            });
          } catch (err) {
            this.log(`looking for the processes that read the old copy of ${batch.map((b) => b.params.path).join(', ')} failed: ${String(err)}`);
          }
        }
        for (const b of batch) this.send(b.params);
      }
    } finally {
      this.draining = false;
    }
  }
}
