/**
 * Resources: a long run of mixed operations must not grow file descriptors or memory,
 * in the engine (this process) and in the real server (/proc/PID/fd, /proc/PID/status VmRSS).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import assert from 'node:assert/strict';
import { Overlay } from '../../server/src/overlay';
import { fdsOf, figure, openFdCount, prng, scale, seedFromEnv, tempDir } from './helpers';
import { outcome, startServer } from './server';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function stack(): { lower: string[]; upper: string; work: string; whiteouts: 'kernel' } {
  const dir = tempDir('res');
  dirs.push(dir);
  const l0 = path.join(dir, 'l0');
  for (let i = 0; i < 50; i++) { fs.mkdirSync(path.join(l0, `d${i % 5}`), { recursive: true }); fs.writeFileSync(path.join(l0, `d${i % 5}/f${i}`), `lower ${i}\n`.repeat(100)); }
  fs.mkdirSync(path.join(dir, 'upper'));
  fs.mkdirSync(path.join(dir, 'work'));
  return { lower: [l0], upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), whiteouts: 'kernel' };
}

const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

async function mixed(n: number, seed: number, op: (kind: number, p: string, i: number) => Promise<unknown>): Promise<void> {
  const r = prng(seed);
  for (let i = 0; i < n; i++) {
    const p = `/d${r.int(5)}/f${r.int(60)}`;
    try { await op(r.int(9), p, i); } catch { /* ENOENT etc. are part of the mix */ }
  }
}

test('engine: no fd or heap growth over a long run of mixed operations', { timeout: 300_000 }, async () => {
  const ov = await Overlay.open(stack());
  const run = (n: number): Promise<void> => mixed(n, seedFromEnv(), async (k, p, i) => {
    switch (k) {
      case 0: return ov.readFile(p);
      case 1: return ov.writeFile(p, `w${i}\n`);
      case 2: return ov.stat(p);
      case 3: return ov.readdir(path.dirname(p));
      case 4: return ov.unlink(p);
      case 5: return ov.chmod(p, 0o644);
      case 6: { const h = await ov.open(p); await ov.readHandle(h, 0, 100); return ov.closeHandle(h); }
      case 7: return ov.rename(p, p + 'x').then(() => ov.rename(p + 'x', p));
      default: return ov.appendFile(p, 'a');
    }
  });
  await run(2000); // warm-up
  gc();
  const fd0 = openFdCount(); const heap0 = process.memoryUsage().heapUsed;
  const n = scale(20000, 200000);
  await run(n);
  gc();
  const fd1 = openFdCount(); const heap1 = process.memoryUsage().heapUsed;
  figure(`engine resources: ${n} ops, fds ${fd0} -> ${fd1}, heapUsed ${(heap0 / 1e6).toFixed(1)} -> ${(heap1 / 1e6).toFixed(1)} MB`);
  assert.ok(fd1 <= fd0 + 2, `fds grew ${fd0} -> ${fd1}`);
  assert.ok(heap1 < heap0 + 20e6, `heap grew ${heap0} -> ${heap1}`);
  await ov.close();
});

test('server: no fd or RSS growth over a long run of mixed requests', { timeout: 300_000 }, async () => {
  const srv = await startServer({ s: stack() });
  try {
    const pid = srv.child.pid!;
    const run = (n: number): Promise<void> => mixed(n, seedFromEnv(), async (k, p, i) => {
      const req = (m: string, params: object): Promise<unknown> => outcome(srv.conn, m, { name: 's', ...params });
      switch (k) {
        case 0: return req('overlay/readFile', { path: p, inline: true });
        case 1: return req('overlay/writeFile', { path: p, data: Buffer.from(`w${i}\n`).toString('base64'), create: true, overwrite: true });
        case 2: return req('overlay/stat', { path: p });
        case 3: return req('overlay/readDirectory', { path: path.dirname(p) });
        case 4: return req('overlay/delete', { path: p, recursive: false });
        case 5: return req('overlay/readFile', { path: p });
        case 6: {
          const o = await outcome(srv.conn, 'overlay/open', { name: 's', path: p });
          if (o.ok) { const h = (o.result as { handle: number }).handle; await req('overlay/read', { handle: h, position: 0, length: 100 }); await req('overlay/close', { handle: h }); }
          return;
        }
        case 7: return req('overlay/rename', { from: p, to: p + 'x', overwrite: true });
        default: return req('overlay/stat', { path: '/../escape' });
      }
    });
    await run(2000);
    const fd0 = fdsOf(pid); const rss0 = rssOf(pid);
    const n = scale(15000, 150000);
    const t0 = Date.now();
    await run(n);
    const fd1 = fdsOf(pid); const rss1 = rssOf(pid);
    figure(`server resources: ${n} requests in ${Date.now() - t0} ms, fds ${fd0} -> ${fd1}, RSS ${(rss0 / 1e6).toFixed(1)} -> ${(rss1 / 1e6).toFixed(1)} MB`);
    assert.ok(fd1 <= fd0 + 4, `server fds grew ${fd0} -> ${fd1}`);
    assert.ok(rss1 < rss0 + 60e6, `server RSS grew ${rss0} -> ${rss1}`);
  } finally {
    await srv.stop();
  }
});
