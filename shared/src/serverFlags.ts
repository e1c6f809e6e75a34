/**
 * Node flags the overlay server runs with, wherever it is started (the extension's client,
 * the benchmarks). Issue 17 (150 MiB with a 1 000 000-entry stack walked, no growth):
 * - A young generation of 4 MiB semi-spaces instead of V8's 16: the server's garbage is
 *   short-lived request data, and the default young generation alone can hold ~48 MiB of RSS.
 * - The old generation grows by 20 % of what a full GC leaves instead of V8's dynamic factor
 *   (up to 4×): the server's live heap is its bounded caches (~45 MiB at most), and with the
 *   default factor four walks of a 1 000 000-file stack left 120–146, then up to 236 MiB of
 *   RSS, growing walk after walk, where this keeps 114–128 MiB. Listing and stat figures were
 *   no slower in interleaved runs (docs/performance.md); `--optimize-for-size` held 95–105 MiB
 *   but took twice as long for listings one request per directory in one run of two.
 *   `--max-old-space-size` would be a hard limit that crashes the server when a request needs
 *   more, so it is not used.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20'];
