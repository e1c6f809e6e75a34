/**
 * Entry point of the end-to-end suite inside VS Code: the `extensionTestsPath` module.
 * Same shape as `@vscode/test-electron` expects (`run(): Promise<void>`), so the suite also
 * runs there where VS Code can be downloaded; here scripts/e2e/run.mjs drives it.
 *
 * Loads every `*.test.js` next to this file (sorted, so the order is stable; skipping
 * stale outputs whose `.ts` was deleted, which `tsc -b` leaves behind), runs the
 * registered cases, and rejects when any failed — the workbench turns that into exit
 * code 1 for the driver.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runRegistered } from './harness/runner';

export async function run(): Promise<void> {
  // out/test/e2e/x.test.js was compiled from test/e2e/x.test.ts
  const sources = path.resolve(__dirname, '../../../test/e2e');
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort();
  for (const file of files) {
    const source = path.join(sources, file.replace(/\.js$/, '.ts'));
    if (fs.existsSync(sources) && !fs.existsSync(source)) {
      console.log(`# skipping ${file}: stale output, ${path.relative(sources, source)} is gone`);
      continue;
    }
    // require, not import(): the extension host provides `vscode` by hooking CommonJS
    // require, and the test files must load through the same path.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path.join(__dirname, file));
  }
  const { passed, failed } = await runRegistered();
  if (failed > 0) {
    throw new Error(`${failed} of ${passed + failed} e2e tests failed`);
  }
}
