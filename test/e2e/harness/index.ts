/**
 * What e2e test files import beside mocha's `test`:
 * `import { resumed, screenshot, skipBecause, waitFor } from './harness';`
 */
export { skipBecause } from '../../mocha/skip';
export { screenshot } from './screenshot';
export { resumed } from './session';
export { waitFor, type WaitOptions } from './wait';
