/**
 * What looking for stale readers costs a copy-up (server/src/holders, server/src/copyUpNotices.ts),
 * with several hundred processes running: sleepers, some holding a lower file open (passed as
 * their fd 3), a few python3 processes that have one mapped. The same server, the same files,
 * scan on and off in alternating blocks (overlay/configure), in one run:
 *   - copy-up latency: overlay/writeFile of a lower file, back to back, each answered before
 *     the next is sent — the scans of earlier copy-ups run meanwhile, between requests;
 *   - how long after the answer the didCopyUp notification comes (the scan itself, one copy-up
 *     at a time), against the same without the scan.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Row } from './figures';
import { startServer } from './serverClient';
import { median } from './stacks';

const BLOCK = 10;

function row(figure: string, baseline: string, base: number, ours: number, unit: string, target: string, limit?: number): Row {
  const ratio = base > 0 ? ours / base : undefined;
  return { figure, baseline, base, ours, unit, target, ratio, pass: limit === undefined || ratio === undefined ? undefined : ratio <= limit };
}

function processCount(): number {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
}

export async function holderScan(root: string, sleepers: number, blocks: number, log: (s: string) => void): Promise<Row[]> {
  const dir = path.join(root, 'holders');
  const files = 2 * blocks * BLOCK + 2 * BLOCK;
  for (const d of ['lower', 'upper', 'work']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, 'lower', `f${i}.conf`), Buffer.alloc(64 * 1024, i % 251));
  const procs: ChildProcess[] = [];
  const held = new Map<string, number>();
  try {
    for (let i = 0; i < sleepers; i++) {
      // Every tenth sleeper holds a lower file open (its fd 3), as a server holds its configuration.
      const file = i % 10 === 0 ? `/f${(i / 10) % files}.conf` : undefined;
      const fd = file ? fs.openSync(path.join(dir, 'lower', file), 'r') : undefined;
      procs.push(spawn('sleep', ['3600'], { stdio: ['ignore', 'ignore', 'ignore', ...(fd === undefined ? [] : [fd])] }));
      if (fd !== undefined) {
        fs.closeSync(fd);
        held.set(file as string, (held.get(file as string) ?? 0) + 1);
      }
    }
    for (let i = 0; i < 4; i++) {
      const file = `/f${i * 10 + 5}.conf`;
      const py = spawn(
        'python3',
        [
          '-c',
          `import mmap,sys; f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); print('ready',flush=True); sys.stdin.read()`,
          path.join(dir, 'lower', file),
        ],
        { stdio: ['pipe', 'pipe', 'ignore'] },
      );
      py.on('error', () => undefined);
      procs.push(py);
      await new Promise<void>((resolve) => {
        py.stdout?.once('data', () => resolve());
        py.once('exit', () => resolve());
        py.once('error', () => resolve());
      });
      if (py.exitCode === null) held.set(file, (held.get(file) ?? 0) + 1);
    }
    const running = processCount();
    log(`holders: ${running} processes running (${sleepers} sleepers, ${[...held.values()].reduce((a, b) => a + b, 0)} holding a lower file)`);

    const srv = await startServer({ h: { lower: [path.join(dir, 'lower')], upper: path.join(dir, 'upper'), work: path.join(dir, 'work') } });
    const notified = new Map<string, { at: number; holders: number }>();
    srv.conn.onNotification('overlay/didCopyUp', (p: { path: string; holders?: unknown[] }) => {
      notified.set(p.path, { at: performance.now(), holders: p.holders?.length ?? -1 });
    });
    let next = 0;
    const copyUp = async (): Promise<{ path: string; ms: number; answeredAt: number }> => {
      const p = `/f${next++}.conf`;
      const t0 = performance.now();
      await srv.conn.sendRequest('overlay/writeFile', { name: 'h', path: p, data: Buffer.from('edited\n').toString('base64'), create: false, overwrite: true });
      const answeredAt = performance.now();
      return { path: p, ms: answeredAt - t0, answeredAt };
    };
    const waitNotified = async (p: string): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!notified.has(p) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      if (!notified.has(p)) throw new Error(`no didCopyUp for ${p}`);
    };
    const latency = { on: [] as number[], off: [] as number[] };
    const delay = { on: [] as number[], off: [] as number[] };
    let found = 0;
    let expected = 0;
    try {
      // Warm both paths once.
      for (const scan of [true, false]) {
        await srv.conn.sendRequest('overlay/configure', { scanHolders: scan });
        await waitNotified((await copyUp()).path);
      }
      for (let b = 0; b < blocks; b++) {
        for (const scan of b % 2 === 0 ? [true, false] : [false, true]) {
          const side = scan ? 'on' : 'off';
          await srv.conn.sendRequest('overlay/configure', { scanHolders: scan });
          // Back to back: the scans of earlier copy-ups run between these requests.
          const made = [];
          for (let i = 0; i < BLOCK - 2; i++) {
            const c = await copyUp();
            latency[side].push(c.ms);
            made.push(c.path);
          }
          for (const p of made) await waitNotified(p);
          // One at a time: the notification's delay after the answer.
          for (let i = 0; i < 2; i++) {
            const c = await copyUp();
            latency[side].push(c.ms);
            await waitNotified(c.path);
            delay[side].push((notified.get(c.path)?.at ?? NaN) - c.answeredAt);
          }
        }
      }
      for (const [p, n] of notified) {
        if (!held.has(p) || n.holders < 0) continue;
        expected += held.get(p) as number;
        found += n.holders;
      }
    } finally {
      await srv.stop();
    }
    log(`holders: named ${found} of the ${expected} holders of the files copied up with the scan on`);
    const label = `${running} processes running, 64 KiB files`;
    return [
      row(
        `copy-up latency (overlay/writeFile of a lower file, back to back), ${label}`,
        'the same, holder scan off',
        median(latency.off),
        median(latency.on),
        'ms',
        '≤ 1.2×',
        1.2,
      ),
      row(
        `didCopyUp after the write's answer, one copy-up at a time, ${label} (${found}/${expected} holders named)`,
        'the same, holder scan off',
        median(delay.off),
        median(delay.on),
        'ms',
        'report',
      ),
    ];
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
