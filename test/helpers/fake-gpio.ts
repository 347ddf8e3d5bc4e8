/**
 * A fake GPIO behind the same {@link GpioFactory} seam production code uses. Tests drive
 * physical levels with `setLevel()`; watchers get the edge synchronously, so timing is fully
 * controlled by the test (fake timers for debounce / heartbeat / intervals).
 */
import { performance } from "node:perf_hooks";
import { setImmediate as immediate } from "node:timers/promises";
import type { DriverContext, DriverCounters, DriverHealth } from "../../src/drivers/types.js";
import type { GpioDirection, GpioEdge, GpioFactory, GpioLevel, GpioPin, GpioWatchCallback } from "../../src/drivers/gpio/types.js";
import { newCounters } from "../../src/drivers/util.js";
import { silentLogger } from "../../src/logger.js";

export interface FakeLine {
  level: GpioLevel;
  exported: boolean;
  direction: GpioDirection | undefined;
  edge: GpioEdge | undefined;
  watchers: GpioWatchCallback[];
  /** Physical levels written, in order (including the initial level of a `high`/`low` export). */
  writes: GpioLevel[];
  exports: number;
  unexports: number;
}

export class FakeGpio implements GpioFactory {
  readonly lines = new Map<number, FakeLine>();
  /** Pin → error `code` that `open()` fails with (until removed). */
  readonly failures = new Map<number, string>();
  opens = 0;

  line(pin: number): FakeLine {
    let l = this.lines.get(pin);
    if (!l) {
      l = { level: 0, exported: false, direction: undefined, edge: undefined, watchers: [], writes: [], exports: 0, unexports: 0 };
      this.lines.set(pin, l);
    }
    return l;
  }

  async open(pin: number, direction: GpioDirection, edge: GpioEdge = "none"): Promise<GpioPin> {
    this.opens++;
    const code = this.failures.get(pin);
    if (code) throw Object.assign(new Error(`${code}: fake failure opening gpio${pin}`), { code });
    const line = this.line(pin);
    if (line.exported) throw Object.assign(new Error(`EBUSY: gpio${pin} already exported`), { code: "EBUSY" });
    line.exported = true;
    line.exports++;
    line.direction = direction;
    line.edge = edge;
    if (direction === "high" || direction === "low" || direction === "out") {
      line.level = direction === "high" ? 1 : 0;
      line.writes.push(line.level);
    }
    let released = false;
    return {
      pin,
      read: async () => line.level,
      write: async (level) => {
        if (released) throw Object.assign(new Error("EBADF: pin unexported"), { code: "EBADF" });
        line.level = level;
        line.writes.push(level);
      },
      watch: (cb) => {
        line.watchers.push(cb);
      },
      unwatch: () => {
        line.watchers = [];
      },
      unexport: () => {
        if (released) return;
        released = true;
        line.watchers = [];
        line.exported = false;
        line.unexports++;
      },
    };
  }

  /** Changes the physical level; watchers see it (edge `both`) if it changed. */
  setLevel(pin: number, level: GpioLevel): void {
    const line = this.line(pin);
    if (line.level === level) return;
    line.level = level;
    const fire =
      line.edge === "both" || (line.edge === "rising" && level === 1) || (line.edge === "falling" && level === 0);
    if (fire) for (const cb of [...line.watchers]) cb(null, level);
  }

  watched(pin: number): boolean {
    return (this.lines.get(pin)?.watchers.length ?? 0) > 0;
  }
}

/** A DriverContext for tests, recording every health report. */
export interface TestContext extends DriverContext {
  reports: DriverHealth[];
  counters: DriverCounters;
}

export function testContext(opts: { gpio?: GpioFactory; stateDir?: string; sysfsRoot?: string } = {}): TestContext {
  const reports: DriverHealth[] = [];
  return {
    logger: silentLogger(),
    stateDir: opts.stateDir ?? "/nonexistent-state",
    counters: newCounters(),
    report: (h) => reports.push(h),
    hardware: {
      ...(opts.gpio ? { gpio: opts.gpio } : {}),
      ...(opts.sysfsRoot ? { sysfsRoot: opts.sysfsRoot } : {}),
    },
    reports,
  };
}

/**
 * Waits for `probe` to return truthy, yielding to real I/O (setImmediate) between tries, with a
 * real-time deadline. Works under fake timers (unlike `waitFor`, which uses setTimeout and
 * Date.now); it never advances fake time.
 */
export async function until<T>(probe: () => T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await immediate();
  }
}

/** Collects what a driver yields, in the background. */
export function collect<T>(iterable: AsyncIterable<T>): { items: T[]; done: Promise<void> } {
  const items: T[] = [];
  const done = (async () => {
    for await (const x of iterable) items.push(x);
  })();
  return { items, done };
}
