/**
 * The one retry backoff of the project (drivers, serial ports, the leaf connection, config
 * following, the publisher) and the abortable delay that waits it out.
 */

/**
 * Exponential backoff with ±20 % jitter: `baseMs`, 2×, 4× … capped at `maxMs`
 * (defaults 0.5 s … 30 s). `attempt` counts from 0. Pure apart from the jitter.
 */
export function backoff(attempt: number, baseMs = 500, maxMs = 30_000): number {
  const ms = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. Never rejects. */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
