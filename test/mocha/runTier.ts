/**
 * One test tier in Node under mocha (scripts/test.mjs starts one process per tier):
 *
 *   node out/test/mocha/runTier.js [--output FILE] [--timeout MS] [--exit] [--grep TEXT] DIR|FILE...
 *
 * Runs every `*.test.js` under each compiled test DIR (out/test/unit, ...) or the FILEs named, each file in a
 * suite of its own, prints mocha's spec output, and writes the results as JSON to FILE.
 * Exit code 1 when a test failed. `--timeout` is the tier's default per test and hook
 * (a test may set its own with `.timeout(ms)`); `--exit` ends the process when the run is
 * over even if something is still open, as `node --test --test-force-exit` did.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import Mocha from 'mocha';
import { loadPerFile, testFiles } from './load';
import { OverlayReporter, type ReporterOptions } from './reporter';

const OUT_TEST = path.resolve(__dirname, '..');
const SRC_TEST = path.resolve(__dirname, '../../../test');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    output: { type: 'string' },
    timeout: { type: 'string', default: '20000' },
    exit: { type: 'boolean', default: false },
    grep: { type: 'string' },
  },
});

const files = positionals.flatMap((arg) => {
  const abs = path.resolve(arg);
  if (abs.endsWith('.js') && fs.statSync(abs).isFile()) return [abs];
  return testFiles(abs, path.join(SRC_TEST, path.relative(OUT_TEST, abs)));
});
const reporterOptions: ReporterOptions = { output: values.output };
const mocha = new Mocha({
  reporter: OverlayReporter,
  reporterOptions,
  timeout: Number(values.timeout),
  color: process.stdout.isTTY,
});
if (values.grep) mocha.grep(new RegExp(values.grep.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
loadPerFile(mocha, files, OUT_TEST);
mocha.run((failures) => {
  const code = failures > 0 ? 1 : 0;
  if (values.exit) {
    // as mocha --exit does: let stdout drain, then end whatever is still open
    process.stdout.write('', () => process.exit(code));
  } else {
    process.exitCode = code;
  }
});
