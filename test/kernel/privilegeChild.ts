/**
 * privileges.ts's writer when it is not root: spawned as that user, runs one job — the
 * operations as plain syscalls under a directory (a kernel mount), or through the engine —
 * and prints the outcomes as JSON.
 */
import { applyEngine, applyFs, type ChildJob } from './privileges';

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as ChildJob;
  const results = 'fs' in job ? applyFs(job.fs, job.ops) : await applyEngine(job.engine, job.ops);
  process.stdout.write(JSON.stringify(results));
}

main().catch((err: unknown) => {
  process.stderr.write(String((err as Error).stack ?? err));
  process.exit(3);
});
