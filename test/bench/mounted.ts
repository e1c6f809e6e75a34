/**
 * Mounted folders against overlay://, measured in the same run on the same stack: opening an
 * overlay (add it → the first listing of its root) mounted (overlay/mount, then readdir of the
 * mount point) and as overlay:// (overlay/readDirectory); then a recursive listing and stat in
 * the mounted folder (kernel and fuse-overlayfs, as the server mounts) against the same through
 * overlay:// as the extension reads it (read-ahead listings, overlay/stat round trips).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Row } from './figures';
import { startServer, walkClient, walkRealParallel } from './serverClient';
import { buildStack, median, percentile, settled } from './stacks';

const hr = (): number => Number(process.hrtime.bigint()) / 1e6;

function row(figure: string, baseline: string, base: number, ours: number, unit: string): Row {
  return { figure, baseline, base, ours, unit, target: 'report', ratio: base > 0 ? ours / base : undefined };
}

export async function mountedFigures(root: string, files: number, layers: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  const s = buildStack(path.join(root, `mounted-${files}-${layers}`), files, layers);
  const spec = { lower: s.lower, upper: s.upper, work: s.work };
  const label = `${files} files/${layers} layers`;
  await settled(s);
  const rows: Row[] = [];
  for (const by of ['kernel', 'fuse-overlayfs'] as const) {
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-bench-run-'));
    const srv = await startServer({}, { env: { XDG_RUNTIME_DIR: runtime, OVERLAYWS_MOUNT_WITH: by } });
    try {
      const probe = await srv.conn.sendRequest<{ name: string }>('overlay/addOverlay', { name: 'probe', spec });
      const m = await srv.conn.sendRequest<{ mount?: { path: string }; failure?: string }>('overlay/mount', { name: probe.name });
      await srv.conn.sendRequest('overlay/removeOverlay', { name: 'probe' });
      if (!m.mount) {
        log(`mounted figures: no ${by} mount here: ${m.failure}`);
        continue;
      }
      const open = { overlay: [] as number[], mounted: [] as number[] };
      for (let i = 0; i <= runs; i++) {
        let t0 = hr();
        await srv.conn.sendRequest('overlay/addOverlay', { name: `o${i}`, spec });
        await srv.conn.sendRequest('overlay/readDirectory', { name: `o${i}`, path: '/' });
        const tOverlay = hr() - t0;
        await srv.conn.sendRequest('overlay/removeOverlay', { name: `o${i}` });
        t0 = hr();
        await srv.conn.sendRequest('overlay/addOverlay', { name: `m${i}`, spec });
        const r = await srv.conn.sendRequest<{ mount?: { path: string } }>('overlay/mount', { name: `m${i}` });
        await fs.promises.readdir(r.mount?.path ?? '/nonexistent');
        const tMounted = hr() - t0;
        await srv.conn.sendRequest('overlay/removeOverlay', { name: `m${i}` }); // lets go of the mount
        if (i === 0) continue; // warm-up
        open.overlay.push(tOverlay);
        open.mounted.push(tMounted);
      }
      rows.push(
        row(`open (add overlay → first root listing), ${label}, mounted by ${by}`, 'the same as overlay://', median(open.overlay), median(open.mounted), 'ms'),
      );

      await srv.conn.sendRequest('overlay/addOverlay', { name: 'bench', spec });
      const r = await srv.conn.sendRequest<{ mount?: { path: string } }>('overlay/mount', { name: 'bench' });
      const dir = r.mount?.path as string;
      // Measured settled: the watcher's initial scan done (it shares the server's event loop).
      for (let t = Date.now(); Date.now() - t < 120_000; await new Promise((res) => setTimeout(res, 25))) {
        const list = await srv.conn.sendRequest<{ name: string; watchReady: boolean }[]>('overlay/list');
        if (list.every((o) => o.watchReady)) break;
      }
      const time = async (fn: () => Promise<unknown>): Promise<number> => {
        await fn();
        const xs: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = hr();
          await fn();
          xs.push(hr() - t0);
        }
        return median(xs);
      };
      for (const par of [1, 8]) {
        const viaOverlay = await time(() => walkClient(srv.conn, 'bench', par));
        const viaMount = await time(() => walkRealParallel(dir, par));
        rows.push(
          row(
            `recursive listing in the mounted folder (${by}), ${label}, ${par === 1 ? '1 at a time' : '8 in flight'}`,
            `overlay:// as the extension lists (read-ahead)${par === 1 ? '' : ', 8 in flight'}`,
            viaOverlay,
            viaMount,
            'ms',
          ),
        );
      }
      const base: number[] = [];
      const ours: number[] = [];
      for (let round = 0; round < 3; round++) {
        for (const x of s.samples) {
          let t0 = process.hrtime.bigint();
          await srv.conn.sendRequest('overlay/stat', { name: 'bench', path: x.path }).catch(() => undefined);
          base.push(Number(process.hrtime.bigint() - t0) / 1e3);
          t0 = process.hrtime.bigint();
          await fs.promises.stat(dir + x.path).catch(() => undefined);
          ours.push(Number(process.hrtime.bigint() - t0) / 1e3);
        }
      }
      rows.push(
        row(
          `stat p50 in the mounted folder (${by}), ${label}, all (${s.samples.length} paths)`,
          'overlay/stat (overlay://)',
          percentile(base, 0.5),
          percentile(ours, 0.5),
          'µs',
        ),
      );
      await srv.conn.sendRequest('overlay/removeOverlay', { name: 'bench' });
    } finally {
      await srv.stop();
      fs.rmSync(runtime, { recursive: true, force: true });
    }
  }
  fs.rmSync(s.root, { recursive: true, force: true });
  return rows;
}
