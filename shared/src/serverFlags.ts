/**
 * Node flags the overlay server runs with, wherever it is started (the extension's client,
 * the benchmarks). A young generation of 4 MiB semi-spaces instead of V8's 16: the server's
 * garbage is short-lived request data, and the default young generation alone can hold
 * ~48 MiB of RSS (issue 17: 150 MiB with a 1 000 000-entry stack).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
