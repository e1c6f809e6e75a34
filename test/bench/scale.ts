/**
 * Big stacks (issue 17): on one stack of `files` files (1 000 000 in a full run) —
 * overlay/addOverlay → the first root listing as the extension asks it, the server's RSS
 * while watching and after full walks, and with `--long [minutes]` a long session of
 * mixed operations sampling RSS and the live heap (heapProbe.ts) for growth.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildStack, median, settled, type BenchStack } from './stacks';
import { startServer, walkServer, type ServerClient } from './serverClient';
import { ReadAhead } from '../../client/src/readAhead';
import { ReadDirectories } from '../../shared/src/protocol';
import { detectWhiteoutFormat } from '../../server/src/overlay/formats';
import type { Row } from './figures';

const NAME = 'bench';

/** The read-ahead budget of the extension's listings after an overlay's first (client/src/readAhead.ts). */
const CLIENT_BUDGET = 4096;

export async function scale(root: string, files: number, layers: number, longMinutes: number | undefined, log: (s: string) => void): Promise<Row[]> {
  const t0 = Date.now();
  const s = buildStack(path.join(root, `mem-${files}`), files, layers);
  log(`scale stack: ${files} files over ${layers} lowers + upper, ${s.dirs} layer directories (built in ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  await settled(s);
  const spec = { lower: s.lower, upper: s.upper, work: s.work };
  const rows: Row[] = [];
  try {
    rows.push(...(await openTimes(s, spec)));
    rows.push(...(await walks(spec, files, layers, log)));
    if (longMinutes !== undefined) rows.push(...(await longSession(s, spec, longMinutes, log)));
  } finally {
    fs.rmSync(s.root, { recursive: true, force: true });
  }
  return rows;
}

/**
 * A server with no overlay; then what the extension does to open a folder: addOverlay, then the
 * root's listing through the client's read-ahead (client/src/readAhead.ts, its first round trip
 * for an overlay). Median of 5 fresh servers. Where the time goes, on 5 more fresh servers:
 * addOverlay, the root's listing alone (budget 0), then a full read-ahead budget from the root;
 * and the whiteout-format detection (`auto`) timed alone in this process.
 */
async function openTimes(s: BenchStack, spec: { lower: string[]; upper: string; work: string }): Promise<Row[]> {
  const add: number[] = [];
  const first: number[] = [];
  const base: number[] = [];
  const add2: number[] = [];
  const rootAlone: number[] = [];
  const fullAhead: number[] = [];
  const detect: number[] = [];
  let firstBudget = 0;
  for (let i = 0; i < 5; i++) {
    const srv = await startServer({});
    try {
      const ra = new ReadAhead((p) => srv.conn.sendRequest<ReadDirectories.Listing[]>(ReadDirectories.method, p));
      firstBudget = ra.firstBudget;
      const t0 = performance.now();
      await srv.conn.sendRequest('overlay/addOverlay', { name: NAME, spec });
      const t1 = performance.now();
      await ra.readDirectory(NAME, '/');
      const t2 = performance.now();
      add.push(t1 - t0);
      first.push(t2 - t0);
    } finally {
      await srv.stop();
    }
    const srv2 = await startServer({});
    try {
      const t0 = performance.now();
      await srv2.conn.sendRequest('overlay/addOverlay', { name: NAME, spec });
      const t1 = performance.now();
      await srv2.conn.sendRequest('overlay/readDirectories', { name: NAME, path: '/', budget: 0 });
      const t2 = performance.now();
      await srv2.conn.sendRequest('overlay/readDirectories', { name: NAME, path: '/', budget: CLIENT_BUDGET });
      const t3 = performance.now();
      add2.push(t1 - t0);
      rootAlone.push(t2 - t1);
      fullAhead.push(t3 - t2);
    } finally {
      await srv2.stop();
    }
    const d0 = performance.now();
    detectWhiteoutFormat([s.upper, ...s.lower]);
    detect.push(performance.now() - d0);
    // What the root listing costs on disk: readdir of the root of every layer, with types.
    const b0 = performance.now();
    for (const d of [s.upper, ...s.lower]) await fs.promises.readdir(d, { withFileTypes: true });
    base.push(performance.now() - b0);
  }
  const ms = (xs: number[]): string => `${median(xs).toFixed(0)} ms`;
  return [
    {
      figure: `overlay/addOverlay → first root listing as the extension asks it (read-ahead ${firstBudget} entries), ${s.files} files (addOverlay alone ${ms(add)}; median of 5 fresh servers)`,
      baseline: 'readdir of every layer root',
      base: median(base),
      ours: median(first),
      unit: 'ms',
      target: '≤ 200 ms',
      pass: median(first) <= 200,
    },
    {
      figure: `where the open goes, ${s.files} files: addOverlay ${ms(add2)} (of which whiteout-format detection, \`auto\`, ${ms(detect)}), the root listing alone ${median(rootAlone).toFixed(1)} ms, then a read-ahead of ${CLIENT_BUDGET} entries ${ms(fullAhead)} (5 more fresh servers)`,
      baseline: 'readdir of every layer root',
      base: median(base),
      ours: median(add2) + median(rootAlone),
      unit: 'ms',
      target: 'report',
    },
  ];
}

async function walks(spec: { lower: string[]; upper: string; work: string }, files: number, layers: number, log: (s: string) => void): Promise<Row[]> {
  const srv = await startServer({ [NAME]: spec });
  try {
    const idle = srv.rssMiB();
    const n = await walkServer(srv.conn, NAME, 8);
    const rss = [srv.rssMiB()];
    // Two more walks show whether a rise from the 1st to the 2nd is growth or when V8 collected.
    for (let i = 0; i < 3; i++) {
      await walkServer(srv.conn, NAME, 8);
      rss.push(srv.rssMiB());
    }
    const watching = (
      await srv.conn.sendRequest<{ layer: string | number; mode: string; roots: string[]; dirs: string[] }[]>('overlay/watching', { name: NAME })
    )
      .map((l) => `${l.layer}: ${l.mode} (${l.roots.length + l.dirs.length})`)
      .join(', ');
    log(`memory: watching ${idle.toFixed(0)} MiB, after walks 1–4: ${rss.map((r) => r.toFixed(0)).join(', ')} MiB; watches: ${watching}`);
    return [
      {
        figure: `server RSS after full walks of ${n} entries, ${files} files/${layers} layers (1st → 2nd; ${idle.toFixed(0)} MiB watching before, ${rss[2].toFixed(0)} and ${rss[3].toFixed(0)} MiB after a 3rd and 4th)`,
        baseline: '—',
        base: rss[0],
        ours: rss[1],
        unit: 'MiB',
        target: '≤ 150 MiB, no growth',
        pass: rss[1] <= 150 && rss[1] <= rss[0] * 1.05,
      },
    ];
  } finally {
    await srv.stop();
  }
}

/**
 * `minutes` of mixed operations as a user and outside processes make them: listings with
 * read-ahead, stats, reads, writes and copy-ups (reverted, so the upper stays the size it
 * was), outside writes in watched directories, VS Code's watches coming and going. RSS and
 * the live heap (after a full GC) are sampled 40 times; growth is the last quarter's median
 * against the second quarter's (the first is warm-up: caches filling).
 */
async function longSession(s: BenchStack, spec: { lower: string[]; upper: string; work: string }, minutes: number, log: (s: string) => void): Promise<Row[]> {
  const sampleMs = Math.max(1000, (minutes * 60_000) / 40);
  const srv = await startServer({ [NAME]: spec }, { heapEveryMs: sampleMs });
  const samples: { t: number; rss: number; live: number }[] = [];
  let ops = 0;
  try {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const files = s.samples.filter((x) => x.layer !== 'miss').map((x) => x.path);
    const dirs = [...new Set(files.map((p) => path.posix.dirname(p)))];
    const end = Date.now() + minutes * 60_000;
    let lastSample = 0;
    let watchId = 1;
    const watched: number[] = [];
    while (Date.now() < end) {
      const op = rand(8);
      const f = files[rand(files.length)];
      const d = dirs[rand(dirs.length)];
      switch (op) {
        case 0:
          await srv.conn.sendRequest('overlay/readDirectories', { name: NAME, path: d, budget: CLIENT_BUDGET });
          break;
        case 1:
          for (let i = 0; i < 20; i++) await srv.conn.sendRequest('overlay/stat', { name: NAME, path: files[rand(files.length)] }).catch(() => undefined);
          break;
        case 2:
          await srv.conn.sendRequest('overlay/readFile', { name: NAME, path: f, inline: true }).catch(() => undefined);
          break;
        case 3: {
          // A copy-up (or a write of an upper file), then revert: the upper keeps its size.
          await srv.conn.sendRequest('overlay/writeFile', {
            name: NAME,
            path: f,
            data: Buffer.from(`edit ${ops}\n`).toString('base64'),
            create: true,
            overwrite: true,
          });
          await srv.conn.sendRequest('overlay/revert', { name: NAME, path: f }).catch(() => undefined);
          break;
        }
        case 4: {
          const p = `${d}/new-${ops}.txt`;
          await srv.conn.sendRequest('overlay/writeFile', {
            name: NAME,
            path: p,
            data: Buffer.from('new\n').toString('base64'),
            create: true,
            overwrite: false,
          });
          await srv.conn.sendRequest('overlay/delete', { name: NAME, path: p, recursive: false });
          break;
        }
        case 5: {
          // Another process writes in the upper, in a directory VS Code watches.
          const real = path.join(s.upper, d);
          fs.mkdirSync(real, { recursive: true });
          fs.writeFileSync(path.join(real, `outside-${ops}.txt`), 'outside\n');
          fs.rmSync(path.join(real, `outside-${ops}.txt`));
          break;
        }
        case 6: {
          const id = watchId++;
          await srv.conn.sendRequest('overlay/watch', { name: NAME, id, path: d, recursive: false });
          watched.push(id);
          if (watched.length > 50) await srv.conn.sendRequest('overlay/unwatch', { name: NAME, id: watched.shift() });
          break;
        }
        default:
          await srv.conn.sendRequest('overlay/readDirectory', { name: NAME, path: d });
      }
      ops++;
      const h = srv.heap();
      if (h && h.t !== lastSample) {
        lastSample = h.t;
        samples.push({ t: h.t, rss: srv.rssMiB(), live: h.liveMiB });
      }
    }
  } finally {
    await srv.stop();
  }
  const q = Math.floor(samples.length / 4);
  const second = samples.slice(q, 2 * q);
  const last = samples.slice(3 * q);
  const med = (xs: number[]): number => median(xs);
  const rss0 = med(second.map((x) => x.rss));
  const rss1 = med(last.map((x) => x.rss));
  const live0 = med(second.map((x) => x.live));
  const live1 = med(last.map((x) => x.live));
  const maxRss = Math.max(...samples.map((x) => x.rss));
  log(
    `long: ${ops} operations in ${minutes} min; RSS samples ${samples.map((x) => x.rss.toFixed(0)).join(' ')}; live heap ${samples.map((x) => x.live.toFixed(0)).join(' ')}`,
  );
  return [
    {
      figure: `server RSS over ${minutes} min of mixed operations (${ops} ops; median of the 2nd quarter → of the last; max ${maxRss.toFixed(0)} MiB)`,
      baseline: '2nd quarter',
      base: rss0,
      ours: rss1,
      unit: 'MiB',
      target: '≤ 150 MiB, no growth',
      ratio: rss1 / rss0,
      pass: maxRss <= 150 && rss1 <= rss0 * 1.05,
    },
    {
      figure: `server live heap (after a full GC) over ${minutes} min of mixed operations (2nd quarter → last)`,
      baseline: '2nd quarter',
      base: live0,
      ours: live1,
      unit: 'MiB',
      target: 'no growth',
      ratio: live1 / live0,
      pass: live1 <= live0 * 1.05,
    },
  ];
}

export type { ServerClient };
