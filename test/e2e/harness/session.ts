/**
 * The layer around mocha that lets the suite survive a window reload.
 *
 * `vscode.openFolder` (or a change of workspace) reloads the workbench and ends this
 * extension host in the middle of a test. The driver puts the tests module back into the
 * new window, which calls `run()` again with a fresh mocha. The session keeps, in a file in
 * the driver's control directory, the result of every finished test and the title of the one
 * running: the next `run()` leaves the finished ones out (their results are carried into the
 * final JSON) and runs the interrupted one again, where `resumed()` is true — that test then
 * checks the state after the reload instead of triggering it a second time.
 * Without a control directory (e.g. under @vscode/test-electron) nothing is kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import { testResult, type TestResult } from '../../mocha/results';
import { CONTROL_DIR_ENV, RESULT_FILE, STATE_FILE } from './protocol';

const { EVENT_TEST_BEGIN, EVENT_TEST_FAIL, EVENT_TEST_PASS, EVENT_TEST_PENDING } = Mocha.Runner.constants;

interface State {
  /** Finished tests (and failed hooks), in run order. */
  finished: TestResult[];
  /** Full title of the test in progress when the state was last written. */
  running?: string;
}

let resumedTitle: string | undefined;
let currentTitle: string | undefined;

/** The window reloaded while the running test ran, and this is its run in the new window. */
export function resumed(): boolean {
  return currentTitle !== undefined && currentTitle === resumedTitle;
}

export class Session {
  private readonly file: string | undefined;
  private state: State;

  constructor(private readonly dir = process.env[CONTROL_DIR_ENV]) {
    this.file = dir ? path.join(dir, STATE_FILE) : undefined;
    this.state = this.load();
    resumedTitle = this.state.running;
  }

  /** Where the reporter writes the results of the run. */
  get resultFile(): string | undefined {
    return this.dir ? path.join(this.dir, RESULT_FILE) : undefined;
  }

  /** Results of tests that finished in an earlier window. */
  get finished(): readonly TestResult[] {
    return this.state.finished;
  }

  /** Failed tests so far, in every window. */
  get failed(): number {
    return this.state.finished.filter((t) => t.outcome === 'failed').length;
  }

  /** Takes the tests that finished in an earlier window out of the run. */
  dropFinished(suite: Mocha.Suite): void {
    const done = new Set(this.state.finished.map((t) => t.title));
    suite.tests = suite.tests.filter((t) => !done.has(t.fullTitle()));
    for (const child of suite.suites) this.dropFinished(child);
  }

  /** Keeps the running test and each result in the state file as the run goes. */
  track(runner: Mocha.Runner): void {
    runner.on(EVENT_TEST_BEGIN, (test) => {
      currentTitle = test.fullTitle();
      if (currentTitle === resumedTitle) console.log(`# resumed after a window reload: ${test.title}`);
      this.save({ ...this.state, running: currentTitle });
    });
    const end = (test: Mocha.Runnable, outcome: TestResult['outcome'], err?: unknown) => {
      const result = testResult(test, outcome, err);
      this.save({ finished: [...this.state.finished.filter((t) => t.title !== result.title), result] });
    };
    runner.on(EVENT_TEST_PASS, (test) => end(test, 'passed'));
    runner.on(EVENT_TEST_FAIL, (test, err) => end(test, 'failed', err));
    runner.on(EVENT_TEST_PENDING, (test) => end(test, 'skipped'));
  }

  private load(): State {
    if (!this.file) return { finished: [] };
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as State;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { finished: [] };
      throw err;
    }
  }

  private save(state: State): void {
    this.state = state;
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, this.file);
  }
}
