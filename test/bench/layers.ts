/**
 * Layer import: a gzip'd layer of a few big files and many small ones unpacked by the engine
 * (in a child process: its time and peak RSS) against GNU tar -xzf of the same blob.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Row } from './figures';
import { makeLayer } from './layerGen';

const CHILD = path.join(__dirname, 'importLayerChild.js');

export async function layerImport(root: string, mib: number, log: (s: string) => void): Promise<Row[]> {
  const dir = path.join(root, 'layer-import');
  fs.mkdirSync(dir, { recursive: true });
  try {
    const blob = path.join(dir, 'layer.tar.gz');
    const big = 4;
    const small = 20_000;
    await makeLayer(blob, big, Math.floor(mib / big), small, true);
    log(`layer: ${big} files of ${Math.floor(mib / big)} MiB and ${small} small ones, gzip'd to ${(fs.statSync(blob).size / 2 ** 20).toFixed(0)} MiB`);
    const tarDir = path.join(dir, 'tar');
    fs.mkdirSync(tarDir);
    const t0 = process.hrtime.bigint();
    execFileSync('tar', ['-xzf', blob, '-C', tarDir]);
    const tarMs = Number(process.hrtime.bigint() - t0) / 1e6;
    fs.rmSync(tarDir, { recursive: true, force: true });
    const r = spawnSync(process.execPath, [CHILD, blob, path.join(dir, 'ours')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`import failed: ${r.stderr}`);
    const ours = JSON.parse(r.stdout) as { maxRssMiB: number; ms: number; entries: number };
    log(`layer import: tar ${tarMs.toFixed(0)} ms, ours ${ours.ms.toFixed(0)} ms, peak RSS ${ours.maxRssMiB} MiB (${ours.entries} entries)`);
    const label = `${mib} MiB layer (${big} big files, ${small} small; gzip)`;
    return [
      { figure: `import ${label}: time`, baseline: 'GNU tar -xzf', base: tarMs, ours: ours.ms, unit: 'ms', target: 'report', ratio: ours.ms / tarMs },
      {
        figure: `import ${label}: peak RSS of the importing process`,
        baseline: '—',
        base: NaN,
        ours: ours.maxRssMiB,
        unit: 'MiB',
        target: '≤ 200 MiB',
        pass: ours.maxRssMiB <= 200,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
