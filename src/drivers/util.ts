/** Milliseconds on a monotonic clock: never steps back or jumps when NTP sets the wall clock. */
export const monotonicNow = (): number => performance.now();

/**
 * Yields immediately, then every `intervalMs`, on a fixed schedule (no drift from slow
 * consumers: a missed tick is skipped, not queued). Ends silently when `signal` aborts.
 * Scheduled on `clock` (default the monotonic clock), so a wall-clock step — a Pi without RTC
 * setting its time from NTP, backwards or forwards — neither stalls nor bunches the ticks.
 */
export async function* ticker(intervalMs: number, signal: AbortSignal, clock: () => number = monotonicNow): AsyncGenerator<number> {
  let next = clock();
  while (!signal.aborted) {
    yield next;
    next += intervalMs;
    const now = clock();
    if (next < now) next = now + ((intervalMs - ((now - next) % intervalMs)) % intervalMs);
    if (!(await delay(next - now, signal))) return;
  }
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

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at `maxMs`. */
export function backoff(attempt: number, baseMs = 500, maxMs = 30_000): number {
  const ms = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

/** Fresh zeroed counters for a sensor. */
export function newCounters(): import("./types.js").DriverCounters {
  return { read: 0, rejected: {}, reopens: 0, errors: 0 };
}

/** Increments `counters.rejected[reason]`. */
export function countRejected(counters: import("./types.js").DriverCounters, reason: string): void {
  counters.rejected[reason] = (counters.rejected[reason] ?? 0) + 1;
}
