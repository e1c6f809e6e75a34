/**
 * Preloaded into the server by the memory benchmarks (`node --expose-gc --require heapProbe.js`):
 * every BENCH_HEAP_MS (default 1000) it collects garbage and writes the process's memory to
 * BENCH_HEAP_FILE as one JSON object — the live heap (heapUsed after a full GC), what V8
 * holds outside it, and the RSS. The server itself knows nothing of it.
 */
import * as fs from 'node:fs';

const file = process.env.BENCH_HEAP_FILE;
if (file) {
  const every = Number(process.env.BENCH_HEAP_MS ?? 1000);
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = (): void => {
    gc?.();
    const m = process.memoryUsage();
    const out = { t: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, gc: !!gc };
    fs.writeFileSync(file + '.tmp', JSON.stringify(out));
    fs.renameSync(file + '.tmp', file);
  };
  setInterval(sample, every).unref();
  sample();
}
