/**
 * What the in-VS-Code test harness and the driver (scripts/e2e/run.mjs) say to each other.
 *
 * The extension host's console reaches the driver through the workbench's
 * `codeAutomationLog` hook, so the harness speaks in console lines that start with a
 * marker; the driver answers through files in a control directory it owns and passes in
 * the extension environment. Both sides must agree on these names; run.mjs repeats them
 * (it is plain JavaScript and cannot import this file) — change both together.
 */

/** Extension environment variable: directory the driver owns for acks and resume state. */
export const CONTROL_DIR_ENV = 'OVERLAY_E2E_CONTROL_DIR';

/** `@@screenshot <name>`: driver saves `<screenshots>/<name>.png`, then writes `<control>/screenshot-<name>.done`. */
export const SCREENSHOT_MARKER = '@@screenshot';

/** `@@e2e-result {"passed":N,"failed":N}`: the final counts, logged once per finished run. */
export const RESULT_MARKER = '@@e2e-result';

/** Name of the file, in the control dir, where the runner keeps progress across window reloads. */
export const STATE_FILE = 'runner-state.json';

/** Screenshot names are file names: keep them to this alphabet. */
export const SCREENSHOT_NAME = /^[A-Za-z0-9._-]{1,100}$/;
