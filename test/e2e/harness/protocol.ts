/**
 * What the in-VS-Code side of the suite and the driver (scripts/e2e/run.mjs) say to each
 * other: files in a control directory the driver owns and passes in the extension
 * environment. run.mjs repeats these names (it is plain JavaScript and cannot import this
 * file) — change both together.
 */

/** Extension environment variable: the driver's control directory. */
export const CONTROL_DIR_ENV = 'OVERLAY_E2E_CONTROL_DIR';

/** The results of the whole run as JSON (test/mocha/results.ts `RunResult`), written when the run ends. */
export const RESULT_FILE = 'result.json';

/** Progress across window reloads (./session.ts). */
export const STATE_FILE = 'session.json';

/** `screenshot-<name>.request`: the driver saves `<screenshots>/<name>.png`, then writes `screenshot-<name>.done` (empty, or the error). */
export const screenshotRequest = (name: string): string => `screenshot-${name}.request`;
export const screenshotDone = (name: string): string => `screenshot-${name}.done`;

/** Screenshot names are file names: keep them to this alphabet. */
export const SCREENSHOT_NAME = /^[A-Za-z0-9._-]{1,100}$/;
