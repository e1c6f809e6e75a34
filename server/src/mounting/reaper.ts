/**
 * `node reaper.js RUNTIME_DIR`: started detached by a server that shut down cleanly while holding
 * mounts (mounts.ts). It waits until the lingering mounts' time is up, then unmounts every one
 * that no server adopted meanwhile, and exits when none lingers any more.
 */
import { reapStale } from './mounts';
import { readState, withState } from './state';

async function main(dir: string): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    const lingering = readState(dir).mounts.filter((r) => r.lingerUntil !== undefined);
    if (lingering.length === 0) return;
    const next = Math.min(...lingering.map((r) => r.lingerUntil as number));
    const wait = next - Date.now();
    await new Promise((r) => setTimeout(r, wait > 0 ? wait + 100 : 5000));
    await withState(dir, (s) => reapStale(s, dir));
  }
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) process.exit(2);
  main(dir).catch(() => process.exit(1));
}
