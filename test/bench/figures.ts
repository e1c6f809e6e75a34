/** Engine/server figures against the kernel mount, fuse-overlayfs and plain disk, measured in the same run. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildStack, median, mountFuse, mountKernel, percentile, type BenchStack } from './stacks';
import { startServer, walkRealParallel, walkServer } from './serverClient';

export interface Row {
  figure: string;
  baseline: string;
  base: number;
  ours: number;
  unit: string;
  target: string;
  /** ratio ours/base when both are numbers */
  ratio?: number;
  pass?: boolean;
}

async function timeMs(fn: () => Promise<unknown>, runs: number): Promise<number> {
  await fn(); // warm: both sides read from the same page cache state
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(xs);
}

function row(figure: string, baseline: string, base: number, ours: number, unit: string, target: string, limit?: number): Row {
  const ratio = base > 0 ? ours / base : undefined;
  return { figure, baseline, base, ours, unit, target, ratio, pass: limit === undefined || ratio === undefined ? undefined : ratio <= limit };
}

export async function listingAndStat(root: string, files: number, layers: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const s = buildStack(path.join(root, `stack-${files}-${layers}`), files, layers);
  log(`stack: ${files} files over ${layers} lowers + upper, ${s.dirs} layer directories`);
  const k = mountKernel(s);
  const f = mountFuse(s);
  const srv = await startServer({ bench: { lower: s.lower, upper: s.upper, work: s.work } });
  try {
    const oursSerial = await timeMs(() => walkServer(srv.conn, 'bench', 1), runs);
    const oursPar = await timeMs(() => walkServer(srv.conn, 'bench', 8), runs);
    if (typeof k === 'string') log(`skipped kernel baseline: ${k}`);
    else {
      rows.push(row(`recursive listing, ${files} files/${layers} layers, 1 request at a time`, 'Node walking kernel mount', await timeMs(() => walkRealParallel(k.dir, 1), runs), oursSerial, 'ms', '≤ 2×', 2));
      rows.push(row(`recursive listing, ${files} files/${layers} layers, 8 in flight`, 'Node walking kernel mount (8 in flight)', await timeMs(() => walkRealParallel(k.dir, 8), runs), oursPar, 'ms', '≤ 2×', 2));
    }
    if (typeof f === 'string') log(`skipped fuse baseline: ${f}`);
    else {
      rows.push(row(`recursive listing, ${files} files/${layers} layers, 1 request at a time`, 'Node walking fuse-overlayfs mount', await timeMs(() => walkRealParallel(f.dir, 1), runs), oursSerial, 'ms', '≤ 1×', 1));
    }
    if (typeof k !== 'string') rows.push(...await statLatency(s, k.dir, srv.conn));
    const rss1 = srv.rssMiB();
    await walkServer(srv.conn, 'bench', 1);
    const rss2 = srv.rssMiB();
    rows.push({ figure: `server RSS after full walks of ${files} files (1st → 2nd)`, baseline: '—', base: rss1, ours: rss2, unit: 'MiB', target: '≤ 150 MiB, no growth', pass: rss2 <= 150 && rss2 <= rss1 * 1.05 });
  } finally {
    await srv.stop();
    if (typeof k !== 'string') k.unmount();
    if (typeof f !== 'string') f.unmount();
  }
  return rows;
}

async function statLatency(s: BenchStack, mount: string, conn: import('vscode-jsonrpc/node').MessageConnection): Promise<Row[]> {
  const rows: Row[] = [];
  const groups = new Map<string, string[]>();
  for (const x of s.samples) groups.set(x.layer, [...(groups.get(x.layer) ?? []), x.path]);
  const all = { base: [] as number[], ours: [] as number[] };
  for (const [layer, paths] of [...groups].sort()) {
    const base: number[] = [];
    const ours: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (const p of paths) {
        let t0 = process.hrtime.bigint();
        await fs.promises.stat(mount + p).catch(() => undefined);
        base.push(Number(process.hrtime.bigint() - t0) / 1e3);
        t0 = process.hrtime.bigint();
        await conn.sendRequest('overlay/stat', { name: 'bench', path: p }).catch(() => undefined);
        ours.push(Number(process.hrtime.bigint() - t0) / 1e3);
      }
    }
    all.base.push(...base);
    all.ours.push(...ours);
    rows.push(row(`stat p50, ${layer === 'miss' ? 'misses' : `hits in ${layer}`} (${paths.length} paths)`, 'fs.stat on kernel mount', percentile(base, 0.5), percentile(ours, 0.5), 'µs', 'report'));
  }
  rows.push(row('stat p50, all', 'fs.stat on kernel mount', percentile(all.base, 0.5), percentile(all.ours, 0.5), 'µs', '≤ 3×', 3));
  rows.push(row('stat p99, all', 'fs.stat on kernel mount', percentile(all.base, 0.99), percentile(all.ours, 0.99), 'µs', 'report'));
  return rows;
}

export async function copyUp(root: string, mib: number, log: (s: string) => void): Promise<Row[]> {
  const dir = path.join(root, `copyup-${mib}`);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['lower', 'upper', 'work', 'plain']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const big = path.join(dir, 'lower', 'big.bin');
  execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
  log(`copy-up: ${mib} MiB file`);
  const cp: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < 3; i++) {
    const dest = path.join(dir, 'plain', `copy${i}`);
    let t0 = process.hrtime.bigint();
    execFileSync('cp', ['--reflink=auto', big, dest]);
    cp.push(Number(process.hrtime.bigint() - t0) / 1e6);
    fs.rmSync(dest);
    fs.rmSync(path.join(dir, 'upper', 'big.bin'), { force: true });
    const srv = await startServer({ c: { lower: [path.join(dir, 'lower')], upper: path.join(dir, 'upper'), work: path.join(dir, 'work') } });
    try {
      t0 = process.hrtime.bigint();
      // chmod-like metadata change: the first write of any kind copies the whole file up.
      const h = await srv.conn.sendRequest<{ handle: number }>('overlay/open', { name: 'c', path: '/big.bin', write: true });
      ours.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await srv.conn.sendRequest('overlay/close', { name: 'c', handle: h.handle });
    } finally { await srv.stop(); }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return [row(`copy-up of a ${mib} MiB file (open for write)`, 'cp --reflink=auto', median(cp), median(ours), 'ms', '≤ 1.2×', 1.2)];
}

export async function layerScaling(root: string, files: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const layers of [1, 8, 32]) {
    const s = buildStack(path.join(root, `scale-${layers}`), files, layers);
    const k = mountKernel(s);
    const srv = await startServer({ s: { lower: s.lower, upper: s.upper, work: s.work } });
    try {
      const ours = await timeMs(() => walkServer(srv.conn, 's', 1), runs);
      const base = typeof k === 'string' ? NaN : await timeMs(() => walkRealParallel(k.dir, 1), runs);
      rows.push(row(`scaling: listing ${files} files over ${layers} layer(s)`, 'Node walking kernel mount', base, ours, 'ms', 'report'));
      log(`scaling ${layers} layers done`);
    } finally {
      await srv.stop();
      if (typeof k !== 'string') k.unmount();
      fs.rmSync(s.root, { recursive: true, force: true });
    }
  }
  return rows;
}
