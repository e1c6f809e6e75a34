/** Polling with a deadline: the only way e2e tests wait (never a bare sleep). */

export interface WaitOptions {
  /** Give up after this long; default 10 s. */
  readonly timeoutMs?: number;
  /** Poll interval; default 50 ms. */
  readonly intervalMs?: number;
  /** Shown in the timeout error. */
  readonly what?: string;
}

/**
 * Resolves with the first truthy value `probe` returns (sync or async); rejects after the
 * deadline with the last error the probe threw, if any.
 */
export async function waitFor<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) {
        return value;
      }
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
