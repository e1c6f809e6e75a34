/**
 * What e2e test files import beside mocha's `test`:
 * `import { overlayApi, resumed, screenshot, skipBecause, waitFor } from './harness';`
 */
export { skipBecause } from '../../mocha/skip';
export { EXTENSION_ID, overlayApi } from './extension';
export { screenshot } from './screenshot';
export { resumed } from './session';
export { waitFor, type WaitOptions } from './wait';
