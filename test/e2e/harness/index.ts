/** What e2e test files import: `import { test, screenshot, waitFor } from './harness';` */
export { test, type TestContext, type TestFn, type TestOptions } from './runner';
export { screenshot } from './screenshot';
export { waitFor, type WaitOptions } from './wait';
