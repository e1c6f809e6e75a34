/**
 * Screenshots of the whole workbench, taken by the driver (scripts/e2e/run.mjs) with
 * playwright's `page.screenshot`. The extension host cannot see the page, so it asks with a
 * request file in the driver's control directory and waits for the driver's answer file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTROL_DIR_ENV, SCREENSHOT_NAME, screenshotDone, screenshotRequest } from './protocol';
import { waitFor } from './wait';

/**
 * Saves `<screenshots dir>/<name>.png` and resolves once the file is written.
 * Returns false (and does nothing) when not running under the driver, e.g. under
 * `@vscode/test-electron`, so tests can call it unconditionally.
 */
export async function screenshot(name: string, timeoutMs = 20_000): Promise<boolean> {
  if (!SCREENSHOT_NAME.test(name)) {
    throw new Error(`bad screenshot name ${JSON.stringify(name)}: use ${SCREENSHOT_NAME}`);
  }
  const dir = process.env[CONTROL_DIR_ENV];
  if (!dir) {
    return false;
  }
  const done = path.join(dir, screenshotDone(name));
  fs.rmSync(done, { force: true });
  const request = path.join(dir, screenshotRequest(name));
  fs.writeFileSync(`${request}.tmp`, '');
  fs.renameSync(`${request}.tmp`, request);
  await waitFor(() => fs.existsSync(done), { timeoutMs, what: `screenshot ${name}` });
  const error = fs.readFileSync(done, 'utf8').trim();
  if (error) {
    throw new Error(`screenshot ${name} failed in the driver: ${error}`);
  }
  return true;
}
