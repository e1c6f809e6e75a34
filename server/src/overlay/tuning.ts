/**
 * Tunables of the lookup caches. Answers about directories changed less than racyMs ago are
 * not cached: file timestamps are coarse (a clock tick), so two changes within one tick can
 * leave mtime and ctime unchanged. Tests lower it to reach the caches at once.
 */
export const lookupTuning = { racyMs: 2000 };
