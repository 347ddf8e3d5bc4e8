import { delay } from "../util/backoff.js";

export { backoff, delay } from "../util/backoff.js";

/**
 * Yields immediately, then every `intervalMs`, on a fixed schedule (no drift from slow
 * consumers: a missed tick is skipped, not queued). Ends silently when `signal` aborts.
 */
export async function* ticker(intervalMs: number, signal: AbortSignal): AsyncGenerator<number> {
  let next = Date.now();
  while (!signal.aborted) {
    yield next;
    next += intervalMs;
    const now = Date.now();
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
