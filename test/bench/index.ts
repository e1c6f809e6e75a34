/**
 * npm run bench [-- --quick]: every figure next to its baseline measured in the same
 * run, on the same data and page-cache state (each side is warmed once, then the median
 * of several runs is reported). Prints a markdown table; exits 0 (targets are reported,
 * not asserted: CI runs --quick to keep the benchmark working).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyUp, layerScaling, listingAndStat, type Row } from './figures';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-bench-'));
  const log = (s: string): void => console.error(`bench: ${s}`);
  const rows: Row[] = [];
  const cfg = quick ? { files: 10_000, layers: 8, runs: 3, copyMiB: 64, scaleFiles: 5_000 } : { files: 100_000, layers: 8, runs: 5, copyMiB: 1024, scaleFiles: 20_000 };
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}; mode ${quick ? 'quick' : 'full'}`);
  try {
    rows.push(...await listingAndStat(root, cfg.files, cfg.layers, cfg.runs, log));
    try {
      const transport = await import('./transport') as { run?: (o: { quick: boolean; root: string; log: (s: string) => void }) => Promise<Row[]> };
      if (transport.run) rows.push(...await transport.run({ quick, root, log }));
    } catch (err) { log(`transport figures unavailable: ${(err as Error).message}`); }
    rows.push(...await copyUp(root, cfg.copyMiB, log));
    rows.push(...await layerScaling(root, cfg.scaleFiles, cfg.runs, log));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const fmt = (x: number): string => Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(2)) : 'n/a';
  console.log('\n| figure | baseline | baseline value | ours | ratio | target | met |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.figure} | ${r.baseline} | ${fmt(r.base)} ${r.unit} | ${fmt(r.ours)} ${r.unit} | ${r.ratio === undefined ? '—' : fmt(r.ratio) + '×'} | ${r.target} | ${r.pass === undefined ? '—' : r.pass ? 'yes' : 'NO'} |`);
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
