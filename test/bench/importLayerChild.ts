/**
 * A child process for layerStream.test.ts and the layer figure of the bench: imports one layer blob and prints its peak RSS
 * (getrusage's maxrss), so the parent checks memory stays bounded without its own heap in it.
 *   node out/test/bench/importLayerChild.js BLOB DIR
 */
import { importLayer } from '../../server/src/overlay/oci';

async function main(): Promise<void> {
  const [blob, dir] = process.argv.slice(2);
  const t0 = process.hrtime.bigint();
  const r = await importLayer(blob, dir, { whiteouts: 'oci' });
  process.stdout.write(
    JSON.stringify({ maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), entries: r.entries, ms: Number(process.hrtime.bigint() - t0) / 1e6 }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`importLayerChild: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
