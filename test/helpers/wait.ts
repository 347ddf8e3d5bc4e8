/**
 * Waiting on conditions with a deadline: the only synchronisation tests use (no sleeps).
 */
export interface WaitOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number;
  /** Poll period in ms (default 25). */
  interval?: number;
  /** Names the condition in the timeout error. */
  what?: string;
}

/**
 * Resolves with the first truthy value `probe` returns; rejects with a clear message (and the
 * probe's last error, if any) when the deadline passes.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 10_000;
  const interval = opts.interval ?? 25;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout}ms waiting for ${opts.what ?? "condition"}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
