/**
 * Pieces shared by the GPIO drivers: a bounded reading channel (callbacks → async iterable),
 * a software debouncer, and the open-with-backoff loop that turns GPIO failures into
 * driver health reports instead of crashes.
 */
import { errorMessage } from "../../errors.js";
import type { DriverContext, HardwareSeams, Reading } from "../types.js";
import { backoff, countRejected, delay } from "../util.js";
import { createOnoffGpioFactory } from "./onoff.js";
import { explainGpioError } from "./errors.js";
import type { GpioDirection, GpioEdge, GpioFactory, GpioLevel, GpioPin } from "./types.js";

/**
 * Readings pushed from callbacks, consumed as an async iterable. Bounded: when the consumer
 * falls `max` readings behind, the oldest is dropped and counted as `rejected.overflow`.
 */
export class ReadingChannel {
  readonly #items: Reading[] = [];
  #wake: (() => void) | undefined;

  constructor(
    private readonly ctx: DriverContext,
    private readonly max = 1000,
  ) {}

  push(reading: Reading): void {
    if (this.#items.length >= this.max) {
      this.#items.shift();
      countRejected(this.ctx.counters, "overflow");
    }
    this.#items.push(reading);
    this.#wake?.();
  }

  /** Yields pushed readings until `signal` aborts. */
  async *iterate(signal: AbortSignal): AsyncGenerator<Reading> {
    while (!signal.aborted) {
      const next = this.#items.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#wake = undefined;
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}

/**
 * Software debounce: a level counts once it has held for `ms` with no further edge.
 * `onSettled(level, since)` fires when the settled level differs from the previous one;
 * `since` is the time of the first edge of the burst that led to it.
 */
export class Debouncer {
  #stable: GpioLevel;
  #pending: GpioLevel | undefined;
  #burstStart = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    initial: GpioLevel,
    private readonly ms: number,
    private readonly now: () => number,
    private readonly onSettled: (level: GpioLevel, since: number) => void,
  ) {
    this.#stable = initial;
  }

  get stable(): GpioLevel {
    return this.#stable;
  }

  /** Feeds one raw edge (the level read right after the interrupt). */
  edge(level: GpioLevel): void {
    if (this.#timer === undefined) this.#burstStart = this.now();
    this.#pending = level;
    if (this.ms <= 0) return this.#settle();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#settle(), this.ms);
  }

  #settle(): void {
    this.#timer = undefined;
    const level = this.#pending;
    this.#pending = undefined;
    if (level === undefined || level === this.#stable) return;
    this.#stable = level;
    this.onSettled(level, this.#burstStart);
  }

  /** Drops a pending edge. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
  }
}

/** Physical ↔ logical level: active-low pins invert. */
export function logical(level: GpioLevel, activeLow: boolean): GpioLevel {
  return activeLow ? ((1 - level) as GpioLevel) : level;
}

/** Does a settled change to `level` match the configured edge (in logical terms)? */
export function edgeMatches(edge: "both" | "rising" | "falling", level: GpioLevel): boolean {
  return edge === "both" || (edge === "rising" ? level === 1 : level === 0);
}

/**
 * The GPIO factory of `hardware`, or else the production onoff one, created once per process
 * so that all sensors and outputs share its "pin already in use" bookkeeping.
 */
let defaultFactory: GpioFactory | undefined;
export function gpioFactoryOf(hardware: Pick<HardwareSeams, "gpio" | "sysfsRoot">): GpioFactory {
  if (hardware.gpio) return hardware.gpio;
  return (defaultFactory ??= createOnoffGpioFactory(hardware.sysfsRoot ? { sysfsRoot: hardware.sysfsRoot } : {}));
}

export interface PinLoopOptions {
  ctx: DriverContext;
  sensorId: string;
  pin: number;
  direction: GpioDirection;
  edge: GpioEdge;
  signal: AbortSignal;
  /** Runs while the pin is open; resolve to release the pin (on abort), reject to reopen it. */
  session(pin: GpioPin): Promise<void>;
}

/**
 * Opens the pin and runs `session` until `signal` aborts. Every failure to open (or a session
 * that fails) is reported as an `EGW_GPIO` driver error naming the pin and the fix, counted,
 * and retried with backoff; after a failure, the first successful open reports `ok`. The pin
 * is always unexported before this resolves. Never rejects.
 */
export async function runPinLoop(o: PinLoopOptions): Promise<void> {
  const { ctx, signal } = o;
  const factory = gpioFactoryOf(ctx.hardware);
  let attempt = 0;
  let failing = false;
  let retryInMs = 0;
  while (!signal.aborted) {
    let pin: GpioPin | undefined;
    try {
      pin = await factory.open(o.pin, o.direction, o.edge);
      if (signal.aborted) break;
      if (failing) {
        failing = false;
        ctx.logger.info({ sensor: o.sensorId, pin: o.pin }, "GPIO recovered");
        ctx.report({ state: "ok" });
      }
      attempt = 0;
      await o.session(pin);
    } catch (err) {
      if (signal.aborted) break;
      const error = explainGpioError(o.pin, err);
      retryInMs = backoff(attempt++);
      ctx.counters.errors++;
      failing = true;
      ctx.logger.warn({ sensor: o.sensorId, pin: o.pin, err: errorMessage(error), retryInMs }, "GPIO unavailable");
      ctx.report({ state: "error", error, retryInMs });
    } finally {
      pin?.unwatch();
      pin?.unexport();
    }
    if (!failing) continue;
    if (!(await delay(retryInMs, signal))) break;
    ctx.counters.reopens++;
  }
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * The `start`/`close` pair shared by the input-pin drivers (gpio-input, gpio-counter): `start`
 * runs `prepare` (e.g. loading persisted state), then the pin loop with `session`, and yields
 * what the session pushes into its channel until `signal` aborts or `close()` is called.
 * `close()` is safe to call twice and resolves once the pin is released.
 */
export function inputPinLifecycle(o: {
  ctx: DriverContext;
  sensorId: string;
  pin: number;
  prepare?: () => Promise<void>;
  session: (channel: ReadingChannel, stop: AbortSignal) => (pin: GpioPin) => Promise<void>;
}): { start(signal: AbortSignal): AsyncGenerator<Reading>; close(): Promise<void> } {
  let closed = new AbortController();
  let running: Promise<void> | undefined;
  return {
    async *start(signal: AbortSignal) {
      if (closed.signal.aborted) closed = new AbortController();
      const local = new AbortController();
      const stop = AbortSignal.any([signal, closed.signal, local.signal]);
      const channel = new ReadingChannel(o.ctx);
      const loop = (async () => {
        await o.prepare?.();
        await runPinLoop({ ctx: o.ctx, sensorId: o.sensorId, pin: o.pin, direction: "in", edge: "both", signal: stop, session: o.session(channel, stop) });
      })();
      running = loop;
      try {
        yield* channel.iterate(stop);
      } finally {
        local.abort();
        await loop;
      }
    },
    async close() {
      closed.abort();
      await running;
    },
  };
}
