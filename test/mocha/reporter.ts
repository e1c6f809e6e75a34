/**
 * The reporter of every tier: mocha's spec output for people, plus the reason of each skipped
 * test under it, and the results as JSON (`reporterOptions.output`) for the tier runner.
 * Inside VS Code (test/e2e) the same reporter writes into the driver's control directory and
 * carries the results of tests that finished before a window reload (`reporterOptions.carried`).
 */
import Mocha from 'mocha';
import { summarize, testResult, writeResult, type TestResult } from './results';

const { EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS, EVENT_TEST_PENDING } = Mocha.Runner.constants;

export interface ReporterOptions {
  /** Where the JSON results go (none: spec output only). */
  readonly output?: string;
  /** Results of an earlier part of the same run (before a window reload), counted with these. */
  readonly carried?: readonly TestResult[];
}

export class OverlayReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options: Mocha.MochaOptions = {}) {
    super(runner, options);
    const opts = (options.reporterOptions ?? {}) as ReporterOptions;
    // Keyed by the test: a test that passed and then failed ("done() called twice") counts once, as failed.
    const results = new Map<Mocha.Runnable, TestResult>();
    runner.on(EVENT_TEST_PASS, (test) => results.set(test, testResult(test, 'passed')));
    runner.on(EVENT_TEST_FAIL, (test, err) => results.set(test, testResult(test, 'failed', err)));
    runner.on(EVENT_TEST_PENDING, (test) => {
      const result = testResult(test, 'skipped');
      results.set(test, result);
      // Spec printed "- title" just before (its listener came first); the reason goes under it.
      if (result.skipReason) Mocha.reporters.Base.consoleLog(`${'  '.repeat(depth(test) + 2)}skipped: ${result.skipReason}`);
    });
    runner.once(EVENT_RUN_END, () => {
      const carried = opts.carried ?? [];
      // Spec's summary (its listener came first) counts this part only: say what came before.
      if (carried.length > 0) printCarried(carried);
      if (opts.output) writeResult(opts.output, summarize([...carried, ...results.values()]));
    });
  }
}

/** The results of an earlier part of the run: counts, and each failure with its error (its window printed no summary). */
function printCarried(carried: readonly TestResult[]): void {
  const log = Mocha.reporters.Base.consoleLog;
  const { passed, failed, skipped } = summarize(carried);
  log(`  before the window reload: ${passed} passing, ${failed} failing, ${skipped} skipped`);
  carried.filter((t) => t.outcome === 'failed').forEach((t, i) => log(`\n  earlier ${i + 1}) ${t.title}:\n${(t.error ?? '').replace(/^/gm, '     ')}`));
  log();
}

function depth(test: Mocha.Runnable): number {
  let n = 0;
  for (let s = test.parent; s && !s.root; s = s.parent) n++;
  return n;
}

export default OverlayReporter;
