/**
 * npm run bench [-- --quick] [--files N] [--layers N] [--mem-files N] [--long [MINUTES]] [--layer-mib N] [--vscode-files N] [--windows N]
 *   [--only listing,real,search,read,copyup,scaling,watch,mounted,holders,memory,layer,vscode]:
 * (memory: on a stack of --mem-files files, addOverlay → first root listing, RSS after walks;
 * with --long, also MINUTES (30) of mixed operations sampling RSS and the live heap;
 * vscode: a real VS Code (code-server + chromium) opening a stack of --vscode-files files,
 * 1 000 000 (20 000 quick), as overlay: and as file:, --windows times each: vscode.ts)
 * every figure next to its baseline measured in the same
 * run, on the same data and page-cache state (each side is warmed once, then the median
 * of several runs is reported). Prints a markdown table; exits 0 (targets are reported,
 * not asserted: CI runs --quick to keep the benchmark working).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyUp, fileSearch, layerScaling, listingAndStat, realStack, watchLatency, type Row } from './figures';
import { holderScan } from './holders';
import { scale } from './scale';
import { layerImport } from './layers';
import { mountedFigures } from './mounted';
import { bench as transportBench } from './transport';
import { vscodeFigures } from './vscode';

/** A row as the transport benchmark reports it (baseline: direct fs.promises.readFile). */
export interface BenchRow {
  figure: string;
  baseline: number;
  ours: number;
  unit: string;
  /** The ratio not to exceed, or a text. */
  target?: number | string;
}

function fromBenchRow(r: BenchRow): Row {
  const limit = typeof r.target === 'number' ? r.target : Number((r.target ?? '').match(/([\d.]+)\s*×/)?.[1]);
  const ratio = r.baseline > 0 ? r.ours / r.baseline : undefined;
  return {
    figure: r.figure,
    baseline: 'fs.promises.readFile of the real file',
    base: r.baseline,
    ours: r.ours,
    unit: r.unit,
    target: typeof r.target === 'number' ? `≤ ${r.target}×` : (r.target ?? 'report'),
    ratio,
    pass: Number.isFinite(limit) && ratio !== undefined ? ratio <= limit : undefined,
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-bench-'));
  const log = (s: string): void => console.error(`bench: ${s}`);
  const arg = (flag: string): number | undefined => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const rows: Row[] = [];
  const cfg = quick
    ? { files: 10_000, layers: 8, runs: 3, copyMiB: 64, scaleFiles: 5_000, memFiles: 0, layerMiB: 128, vscodeFiles: 20_000, windows: 2 }
    : { files: 100_000, layers: 8, runs: 5, copyMiB: 1024, scaleFiles: 20_000, memFiles: 1_000_000, layerMiB: 2048, vscodeFiles: 1_000_000, windows: 3 };
  cfg.files = arg('--files') ?? cfg.files;
  cfg.layers = arg('--layers') ?? cfg.layers;
  cfg.memFiles = arg('--mem-files') ?? cfg.memFiles;
  cfg.layerMiB = arg('--layer-mib') ?? cfg.layerMiB;
  cfg.vscodeFiles = arg('--vscode-files') ?? cfg.vscodeFiles;
  cfg.windows = arg('--windows') ?? cfg.windows;
  // --long [minutes]: the memory figure also runs a long session of mixed operations (30 min unless told).
  const longMinutes = process.argv.includes('--long') ? Number(process.argv[process.argv.indexOf('--long') + 1]) || 30 : undefined;
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}; mode ${quick ? 'quick' : 'full'}`,
  );
  try {
    const figures: [string, () => Promise<Row[]>][] = [
      ['listing', () => listingAndStat(root, cfg.files, cfg.layers, cfg.runs, log)],
      ['real', () => realStack(root, cfg.runs, log)],
      ['search', () => fileSearch(root, cfg.files, cfg.layers, cfg.runs)],
      ['read', async () => (await transportBench({ quick })).map(fromBenchRow)],
      ['copyup', () => copyUp(root, cfg.copyMiB, log)],
      ['scaling', () => layerScaling(root, cfg.scaleFiles, cfg.runs, log)],
      ['watch', () => watchLatency(root, quick ? 10 : 30)],
      ['mounted', () => mountedFigures(root, cfg.files, cfg.layers, cfg.runs, log)],
      ['holders', () => holderScan(root, quick ? 200 : 400, quick ? 2 : 3, log)],
      ['memory', async () => (cfg.memFiles > 0 ? scale(root, cfg.memFiles, cfg.layers, longMinutes, log) : [])],
      ['layer', () => layerImport(root, cfg.layerMiB, log)],
      ['vscode', () => vscodeFigures(root, cfg.vscodeFiles, cfg.layers, cfg.windows, log)],
    ];
    const only = process.argv.includes('--only') ? (process.argv[process.argv.indexOf('--only') + 1]?.split(',') ?? []) : undefined;
    const unknown = only?.filter((n) => !figures.some(([name]) => name === n)) ?? [];
    if (unknown.length > 0) throw new Error(`--only: unknown figure ${unknown.join(', ')} (known: ${figures.map(([n]) => n).join(', ')})`);
    for (const [name, run] of figures) if (!only || only.includes(name)) rows.push(...(await run()));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const fmt = (x: number): string => (!Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(3));
  console.log('\n| figure | baseline | baseline value | ours | ratio | target | met |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.figure} | ${r.baseline} | ${fmt(r.base)} ${r.unit} | ${fmt(r.ours)} ${r.unit} | ${r.ratio === undefined ? '—' : fmt(r.ratio) + '×'} | ${r.target} | ${r.pass === undefined ? '—' : r.pass ? 'yes' : 'NO'} |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
