/**
 * The holder scan in a worker thread of the server (scanner.ts starts it): the scan's many
 * small synchronous /proc reads run here, so the server's event loop keeps answering
 * requests meanwhile. One message per job: `{ id, files }` in, `{ id, report }` or
 * `{ id, error }` out.
 */
import { parentPort } from 'node:worker_threads';
import { ContainerNames } from './containers';
import { findHolders, type CopiedFile } from './index';

const containers = new ContainerNames();

parentPort?.on('message', (job: { id: number; files: CopiedFile[] }) => {
  findHolders(job.files, { containers, sliceMs: Infinity }).then(
    (report) => parentPort?.postMessage({ id: job.id, report }),
    (err: unknown) => parentPort?.postMessage({ id: job.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
