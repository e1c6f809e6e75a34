/**
 * The server's side of the holder scan: jobs sent to a worker thread (scanWorker.ts), started
 * at the first copy-up and ended after a while without one (it costs a V8 isolate). Where the
 * worker cannot run (its file missing), the scan runs on this thread in slices (`pause`).
 */
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { findHolders, type CopiedFile, type HolderReport } from './index';
import { ContainerNames } from './containers';

const IDLE_MS = 60_000;

export class HolderScanner {
  private worker?: Worker;
  private readonly jobs = new Map<number, { resolve: (r: HolderReport) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private idleTimer?: NodeJS.Timeout;
  private containers?: ContainerNames;

  /** `workerFile`: the compiled scanWorker.js; `pause`: how the in-thread fallback yields between slices. */
  constructor(
    private readonly workerFile: string,
    private readonly pause?: () => Promise<void>,
  ) {}

  async scan(files: CopiedFile[]): Promise<HolderReport> {
    const worker = this.start();
    if (!worker) return findHolders(files, { containers: (this.containers ??= new ContainerNames()), pause: this.pause });
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const id = this.nextId++;
    try {
      return await new Promise<HolderReport>((resolve, reject) => {
        this.jobs.set(id, { resolve, reject });
        worker.postMessage({ id, files });
      });
    } finally {
      if (this.jobs.size === 0) {
        this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
        this.idleTimer.unref();
      }
    }
  }

  private start(): Worker | undefined {
    if (this.worker) return this.worker;
    if (!fs.existsSync(this.workerFile)) return undefined;
    const worker = new Worker(this.workerFile);
    worker.unref();
    worker.on('message', (m: { id: number; report?: HolderReport; error?: string }) => {
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (m.report) job?.resolve(m.report);
      else job?.reject(new Error(m.error ?? 'the holder scan failed'));
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const job of this.jobs.values()) job.reject(err);
      this.jobs.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the holder scan's worker ended (${code})`)));
    this.worker = worker;
    return worker;
  }

  /** Ends the worker (it starts again at the next scan). */
  stop(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }
}
