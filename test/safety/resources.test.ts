/**
 * Resources: a long run of mixed operations must not grow file descriptors or memory,
 * in the engine (this process) and in the real server (/proc/PID/fd, /proc/PID/status VmRSS).
 * Memory is sampled after each quarter of the run and only the second half is judged: the
 * first tens of thousands of requests warm V8 up (its young generation grows from 1 to
 * 16 MiB semi-spaces: about 30 MB of RSS that stays, a plateau, not a leak). Judged are
 * the live heap after a forced full GC (in the server through gcOnSignal.ts), which a
 * leak in JavaScript grows, and RSS outside V8's heap (RSS − heapTotal), which a native
 * leak grows while V8 sizing its heap does not. Plain RSS is reported as a user sees it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'mocha';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import assert from 'node:assert/strict';
import { Overlay } from '../../server/src/overlay';
import { fdsOf, figure, GC_STATS, openFdCount, prng, scale, seedFromEnv, tempDir } from './helpers';
import { outcome, startServer, type Server } from './server';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Second-half growth allowed. A leak of 100 bytes a request over 7 500 requests is 0.75 MB. */
const HEAP_SLACK = 2e6;
/** RSS moves in steps of pages and malloc arenas; the heap figure is the fine-grained one. */
const RSS_SLACK = 16e6;

function stack(): { lower: string[]; upper: string; work: string; whiteouts: 'kernel' } {
  const dir = tempDir('res');
  dirs.push(dir);
  const l0 = path.join(dir, 'l0');
  for (let i = 0; i < 50; i++) {
    fs.mkdirSync(path.join(l0, `d${i % 5}`), { recursive: true });
    fs.writeFileSync(path.join(l0, `d${i % 5}/f${i}`), `lower ${i}\n`.repeat(100));
  }
  fs.mkdirSync(path.join(dir, 'upper'));
  fs.mkdirSync(path.join(dir, 'work'));
  return { lower: [l0], upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), whiteouts: 'kernel' };
}

const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

/** A stream of random operations on the same 60 names; `run(n)` continues it. */
function mixed(seed: number, op: (kind: number, p: string, i: number) => Promise<unknown>): (n: number) => Promise<void> {
  const r = prng(seed);
  let i = 0;
  return async (n) => {
    for (const end = i + n; i < end; i++) {
      const p = `/d${r.int(5)}/f${r.int(60)}`;
      try {
        await op(r.int(9), p, i);
      } catch {
        /* ENOENT etc. are part of the mix */
      }
    }
  };
}

/** heap: used + external after a full GC; rss: as the user sees it; outside: rss − heapTotal after the GC. */
interface Sample {
  fds: number;
  heap: number;
  rss: number;
  outside: number;
}

/** Run n operations in quarters, sampling before and after each: five samples. */
async function curve(n: number, run: (n: number) => Promise<void>, sample: () => Promise<Sample>): Promise<Sample[]> {
  const out = [await sample()];
  for (let q = 0; q < 4; q++) {
    await run(n / 4);
    out.push(await sample());
  }
  return out;
}

const mb = (x: number): string => (x / 1e6).toFixed(1);
const show = (s: Sample[], k: keyof Sample, f: (x: number) => string = String): string => s.map((x) => f(x[k])).join(' → ');

/** fds must not grow at all; memory may grow in the first half (warm-up), not in the second. */
function judge(what: string, s: Sample[]): void {
  assert.ok(s[4].fds <= s[0].fds + 2, `${what}: fds grew ${show(s, 'fds')}`);
  assert.ok(s[4].heap - s[2].heap < HEAP_SLACK, `${what}: live heap grew over the second half: ${show(s, 'heap', mb)} MB`);
  assert.ok(s[4].outside - s[2].outside < RSS_SLACK, `${what}: RSS outside the V8 heap grew over the second half: ${show(s, 'outside', mb)} MB`);
}

test('engine: no fd or heap growth over a long run of mixed operations', async () => {
  const ov = await Overlay.open(stack());
  const run = mixed(seedFromEnv(), async (k, p, i) => {
    switch (k) {
      case 0:
        return ov.readFile(p);
      case 1:
        return ov.writeFile(p, `w${i}\n`);
      case 2:
        return ov.stat(p);
      case 3:
        return ov.readdir(path.dirname(p));
      case 4:
        return ov.unlink(p);
      case 5:
        return ov.chmod(p, 0o644);
      case 6: {
        const h = await ov.open(p);
        await ov.readHandle(h, 0, 100);
        return ov.closeHandle(h);
      }
      case 7:
        return ov.rename(p, p + 'x').then(() => ov.rename(p + 'x', p));
      default:
        return ov.appendFile(p, 'a');
    }
  });
  await run(2000); // warm-up
  const n = scale(20000, 200000);
  const t0 = Date.now();
  const s = await curve(n, run, () => {
    const rss = process.memoryUsage().rss;
    gc();
    const m = process.memoryUsage();
    return Promise.resolve({ fds: openFdCount(), heap: m.heapUsed + m.external, rss, outside: m.rss - m.heapTotal });
  });
  figure(
    `engine resources (the test process): ${n} ops in ${Date.now() - t0} ms, per quarter: fds ${show(s, 'fds')}; live heap+external ${show(s, 'heap', mb)} MB; RSS ${show(s, 'rss', mb)} MB, outside the V8 heap ${show(s, 'outside', mb)} MB`,
  );
  judge('engine', s);
  await ov.close();
}).timeout(600_000);

/** process.memoryUsage() of the server after a full GC (gcOnSignal.ts). */
function serverGcStats(srv: Server): Promise<NodeJS.MemoryUsage> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => {
      srv.child.stderr!.off('data', on);
      reject(new Error('no GC stats from the server'));
    }, 10_000);
    const on = (d: Buffer): void => {
      buf += d.toString();
      const at = buf.indexOf(GC_STATS);
      const end = buf.indexOf('\n', at);
      if (at < 0 || end < 0) return;
      clearTimeout(t);
      srv.child.stderr!.off('data', on);
      resolve(JSON.parse(buf.slice(at + GC_STATS.length, end)) as NodeJS.MemoryUsage);
    };
    srv.child.stderr!.on('data', on);
    srv.child.kill('SIGUSR2');
  });
}

test('server: no fd or memory growth over a long run of mixed requests', async () => {
  const srv = await startServer({ s: stack() }, { execArgv: ['--expose-gc', '-r', path.join(__dirname, 'gcOnSignal.js')] });
  try {
    const pid = srv.child.pid!;
    const run = mixed(seedFromEnv(), async (k, p, i) => {
      const req = (m: string, params: object): Promise<unknown> => outcome(srv.conn, m, { name: 's', ...params });
      switch (k) {
        case 0:
          return req('overlay/readFile', { path: p, inline: true });
        case 1:
          return req('overlay/writeFile', { path: p, data: Buffer.from(`w${i}\n`).toString('base64'), create: true, overwrite: true });
        case 2:
          return req('overlay/stat', { path: p });
        case 3:
          return req('overlay/readDirectory', { path: path.dirname(p) });
        case 4:
          return req('overlay/delete', { path: p, recursive: false });
        case 5:
          return req('overlay/readFile', { path: p });
        case 6: {
          const o = await outcome(srv.conn, 'overlay/open', { name: 's', path: p });
          if (o.ok) {
            const h = (o.result as { handle: number }).handle;
            await req('overlay/read', { handle: h, position: 0, length: 100 });
            await req('overlay/close', { handle: h });
          }
          return;
        }
        case 7:
          return req('overlay/rename', { from: p, to: p + 'x', overwrite: true });
        default:
          return req('overlay/stat', { path: '/../escape' });
      }
    });
    await run(2000);
    const n = scale(16000, 160000);
    const t0 = Date.now();
    const heapTotal: number[] = [];
    const s = await curve(n, run, async () => {
      const rss = rssOf(pid); // before the forced GC: what the user sees
      const m = await serverGcStats(srv);
      heapTotal.push(m.heapTotal);
      return { fds: fdsOf(pid), heap: m.heapUsed + m.external, rss, outside: m.rss - m.heapTotal };
    });
    figure(
      `server resources: ${n} requests in ${Date.now() - t0} ms, per quarter: fds ${show(s, 'fds')}; live heap+external ${show(s, 'heap', mb)} MB; RSS ${show(s, 'rss', mb)} MB = V8 heapTotal ${heapTotal.map(mb).join(' → ')} MB + outside it ${show(s, 'outside', mb)} MB`,
    );
    judge('server', s);
    assert.ok(srv.alive(), 'the server died');
  } finally {
    await srv.stop();
  }
}).timeout(900_000);
