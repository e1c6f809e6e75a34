/**
 * The machine-readable results of a mocha run, as the tier runner (scripts/test.mjs) and the
 * e2e driver (scripts/e2e/run.mjs) read them: one JSON file per run, written by the reporter.
 */
import * as fs from 'node:fs';
import type { Runnable } from 'mocha';
import { skipReason } from './skip';

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface TestResult {
  /** Full title: file, suites and test, as `--grep` and E2E_GREP match it. */
  readonly title: string;
  readonly outcome: Outcome;
  readonly durationMs?: number;
  /** Failed: the error's message and stack. */
  readonly error?: string;
  /** Skipped: why. */
  readonly skipReason?: string;
}

export interface RunResult {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly tests: readonly TestResult[];
}

/** One finished test (or failed hook) as a result. */
export function testResult(test: Runnable, outcome: Outcome, err?: unknown): TestResult {
  const result: { -readonly [K in keyof TestResult]: TestResult[K] } = { title: test.fullTitle(), outcome };
  if (test.duration !== undefined) result.durationMs = test.duration;
  if (outcome === 'failed') result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (outcome === 'skipped') result.skipReason = skipReason(test);
  return result;
}

export function summarize(tests: readonly TestResult[]): RunResult {
  const count = (o: Outcome) => tests.filter((t) => t.outcome === o).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), tests };
}

/** Written whole to a temp file and renamed into place: a reader never sees half a result. */
export function writeResult(file: string, result: RunResult): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  fs.renameSync(tmp, file);
}
