export { backoff, delay } from "../util/backoff.js";

/** Milliseconds on a monotonic clock: never steps back or jumps when NTP sets the wall clock. */
export const monotonicNow = (): number => performance.now();

/**
 * Yields immediately, then on the grid of `intervalMs` (every multiple of it on `clock`), so
 * sensors with the same interval sample together, the way Telegraf's `round_interval` does: one
 * wake-up and one batch of publishes for all of them instead of one each (issue 13: CPU at 1k
 * readings/s). No drift from slow consumers: a missed tick is skipped, not queued. Ends silently
 * when `signal` aborts. Scheduled on `clock` (default the monotonic clock), so a wall-clock step
 * (a Pi without RTC setting its time from NTP, backwards or forwards) neither stalls nor bunches
 * the ticks.
 *
 * A hand-written iterator, not an async generator: a tick is one promise resolved by one timer,
 * where a generator (and every generator wrapping it) adds several microtask hops per tick.
 * One `next()` at a time, as `for await` calls it.
 */
export function ticker(intervalMs: number, signal: AbortSignal, clock: () => number = monotonicNow): AsyncIterableIterator<number> {
  let due: number | undefined; // the next tick on the grid; undefined before the first
  let timer: ReturnType<typeof setTimeout> | undefined;
  let waiting: ((r: IteratorResult<number>) => void) | undefined;
  let ended = false;
  const nextOnGrid = (now: number) => (Math.floor(now / intervalMs) + 1) * intervalMs;
  const end = (): IteratorResult<number> => {
    ended = true;
    clearTimeout(timer);
    signal.removeEventListener("abort", end);
    const w = waiting;
    waiting = undefined;
    w?.({ done: true, value: undefined });
    return { done: true, value: undefined };
  };
  const fire = () => {
    const w = waiting!;
    const t = due!;
    waiting = undefined;
    due = t + intervalMs;
    w({ done: false, value: t });
  };
  if (signal.aborted) ended = true;
  else signal.addEventListener("abort", end, { once: true });
  const it: AsyncIterableIterator<number> = {
    [Symbol.asyncIterator]: () => it,
    next(): Promise<IteratorResult<number>> {
      if (ended) return Promise.resolve({ done: true, value: undefined });
      if (waiting) return Promise.reject(new Error("ticker: next() called while a tick is pending"));
      const now = clock();
      if (due === undefined) {
        due = nextOnGrid(now);
        return Promise.resolve({ done: false, value: now });
      }
      // The consumer took longer than the interval: the missed ticks are skipped.
      if (due < now) due = nextOnGrid(now);
      return new Promise((resolve) => {
        waiting = resolve;
        timer = setTimeout(fire, due! - now);
      });
    },
    return: () => Promise.resolve(end()),
  };
  return it;
}

/**
 * `f()` for every value of `source`, as an iterable: one `.then` per value, where an async
 * generator wrapping `source` adds a generator's microtask hops (issue 13).
 */
export function mapAsync<T, U>(source: AsyncIterator<T>, f: (value: T) => U): AsyncIterableIterator<U> {
  const it: AsyncIterableIterator<U> = {
    [Symbol.asyncIterator]: () => it,
    next: () => source.next().then((r): IteratorResult<U> => (r.done ? { done: true, value: undefined } : { done: false, value: f(r.value) })),
    return: async () => {
      await source.return?.();
      return { done: true, value: undefined };
    },
  };
  return it;
}

/** Fresh zeroed counters for a sensor. */
export function newCounters(): import("./types.js").DriverCounters {
  return { read: 0, rejected: {}, reopens: 0, errors: 0 };
}

/** Increments `counters.rejected[reason]`. */
export function countRejected(counters: import("./types.js").DriverCounters, reason: string): void {
  counters.rejected[reason] = (counters.rejected[reason] ?? 0) + 1;
}
