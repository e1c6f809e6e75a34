/**
 * Preloaded into the server by resources.test.ts (`node --expose-gc -r`): on SIGUSR2 a
 * full garbage collection, then one stderr line with process.memoryUsage(), so the test
 * sees the live heap rather than garbage V8 has not collected yet.
 */
import { GC_STATS } from './helpers';

const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  gc?.();
  process.stderr.write(`${GC_STATS}${JSON.stringify(process.memoryUsage())}\n`);
});
