/**
 * Entry point of the end-to-end suite inside VS Code: the `extensionTestsPath` module.
 * Same shape as `@vscode/test-electron` expects (`run(): Promise<void>` creating a mocha
 * run), so the suite also runs there where VS Code can be downloaded; here
 * scripts/e2e/run.mjs drives it.
 *
 * Runs every `*.test.js` next to this file under mocha (each file a suite of its own, in name
 * order, leaving out stale outputs whose `.ts` was deleted), with a default timeout of 30 s
 * per test and E2E_GREP (a substring of the test's title) as mocha's grep. The session layer
 * (harness/session.ts) carries the run across window reloads; the reporter prints the spec
 * output to the extension host's console (the driver shows it) and writes the results of
 * the whole run as JSON into the driver's control directory. Rejects when any test failed —
 * the workbench turns that into exit code 1 for the driver.
 */
import * as path from 'node:path';
import Mocha from 'mocha';
import { loadPerFile, testFiles } from '../mocha/load';
import { OverlayReporter, type ReporterOptions } from '../mocha/reporter';
import { Session } from './harness/session';

const DEFAULT_TIMEOUT_MS = 30_000;

export async function run(): Promise<void> {
  const session = new Session();
  const reporterOptions: ReporterOptions = { output: session.resultFile, carried: session.finished };
  const mocha = new Mocha({ reporter: OverlayReporter, reporterOptions, timeout: DEFAULT_TIMEOUT_MS, color: false });
  const grep = process.env.E2E_GREP;
  if (grep) mocha.grep(new RegExp(grep.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  // out/test/e2e/x.test.js was compiled from test/e2e/x.test.ts
  const files = testFiles(__dirname, path.resolve(__dirname, '../../../test/e2e'));
  loadPerFile(mocha, files, __dirname);
  session.dropFinished(mocha.suite);
  await new Promise<void>((resolve) => session.track(mocha.run(() => resolve())));
  if (session.failed > 0) {
    throw new Error(`${session.failed} e2e test(s) failed`);
  }
}
