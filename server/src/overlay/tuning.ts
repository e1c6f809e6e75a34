/**
 * Tunables of the lookup caches. Answers about directories changed less than racyMs ago are
 * not cached: file timestamps are coarse (a clock tick), so two changes within one tick can
 * leave mtime and ctime unchanged. Tests lower it to reach the caches at once.
 */
export const lookupTuning = {
  racyMs: 2000,
  /**
   * Bounds of the caches, so memory does not grow with the tree (issue 17: 150 MiB with a
   * 1 000 000-entry stack walked): lower-layer lookup answers kept (a few hundred bytes each:
   * a compact LayerStat of every layer's copy), and names kept by the listing cache over all directories
   * (about 100 bytes each). When full, a cache starts again empty.
   */
  lowerLookups: 60_000,
  listingNames: 120_000,
  /** Directories whose overlay.opaque xattr is remembered (formats/kernel.ts; ~200 bytes each). */
  opaqueDirs: 20_000,
};
