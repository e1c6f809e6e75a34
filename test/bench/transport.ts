/**
 * Transport benchmark: reading a file through the server into a Uint8Array in this
 * (client) process, against fs.promises.readFile of the real file.
 *   ours          = readOverlayFile (server says where the served copy is; we read it) over node-ipc, as the extension does
 *   base64 (ipc)  = overlay/readFile with inline base64 in the JSON response, node-ipc
 *   base64 (stdio)= the same over stdio
 * Targets: 1 MiB ≤ 1.5×, 64 MiB ≤ 2×.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as P from '../../shared/src/protocol';
import { readOverlayFile } from '../../client/src/transport';
import { startServer } from '../server/harness';
import type { BenchRow } from './index';

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeIt(n: number, fn: () => Promise<Uint8Array>, expectSize: number): Promise<number> {
  for (let i = 0; i < Math.min(3, n); i++) await fn(); // warm up
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const data = await fn();
    xs.push(performance.now() - t);
    if (data.byteLength !== expectSize) throw new Error(`read ${data.byteLength} bytes, expected ${expectSize}`);
  }
  return median(xs);
}

export async function bench(opts: { quick: boolean }): Promise<BenchRow[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-bench-transport-'));
  const lower = path.join(root, 'lower');
  const upper = path.join(root, 'upper');
  const work = path.join(root, 'work');
  for (const d of [lower, upper, work]) fs.mkdirSync(d);
  const sizes: { label: string; bytes: number; n: number; target: number | string }[] = [
    { label: '4 KiB', bytes: 4 << 10, n: opts.quick ? 300 : 3000, target: 'report' }, // a round trip, whatever the transport
    { label: '1 MiB', bytes: 1 << 20, n: opts.quick ? 30 : 200, target: 1.5 },
    { label: '64 MiB', bytes: 64 << 20, n: opts.quick ? 5 : 15, target: 2 },
  ];
  for (const s of sizes) fs.writeFileSync(path.join(lower, `f${s.bytes}`), Buffer.alloc(s.bytes, 0x61 + (s.bytes % 26)));
  const spec = { lower: [lower], upper, work };
  const ipc = await startServer({ b: spec }, '--node-ipc');
  const stdio = await startServer({ b: spec }, '--stdio');
  const rows: BenchRow[] = [];
  try {
    for (const s of sizes) {
      const real = path.join(lower, `f${s.bytes}`);
      const p = `/f${s.bytes}`;
      const base = await timeIt(s.n, () => fs.promises.readFile(real), s.bytes);
      const ours = await timeIt(s.n, () => readOverlayFile((q) => ipc.conn.sendRequest(P.ReadFile.type, q), 'b', p), s.bytes);
      rows.push({ figure: `readFile ${s.label} through the server (direct read, node-ipc)`, baseline: base, ours, unit: 'ms', target: s.target });
      const nB64 = Math.max(3, Math.ceil(s.n / 5));
      for (const [label, c] of [
        ['node-ipc', ipc],
        ['stdio', stdio],
      ] as const) {
        const b64 = await timeIt(
          nB64,
          async () => Buffer.from((await c.conn.sendRequest(P.ReadFile.type, { name: 'b', path: p, inline: true })).data ?? '', 'base64'),
          s.bytes,
        );
        rows.push({ figure: `readFile ${s.label}, base64 in JSON (${label}) — rejected option`, baseline: base, ours: b64, unit: 'ms' });
      }
    }
  } finally {
    await ipc.stop();
    await stdio.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
