import { delay } from "../util/backoff.js";

export { backoff, delay } from "../util/backoff.js";

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

/** Fresh zeroed counters for a sensor. */
export function newCounters(): import("./types.js").DriverCounters {
  return { read: 0, rejected: {}, reopens: 0, errors: 0 };
}

/** Increments `counters.rejected[reason]`. */
export function countRejected(counters: import("./types.js").DriverCounters, reason: string): void {
  counters.rejected[reason] = (counters.rejected[reason] ?? 0) + 1;
}
