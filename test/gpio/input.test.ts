import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setImmediate as immediate } from "node:timers/promises";
import { gpioInputSensor } from "../../src/config/schema.js";
import { GatewayError } from "../../src/errors.js";
import { createGpioInput } from "../../src/drivers/gpio/index.js";
import type { Driver } from "../../src/drivers/types.js";
import { FakeGpio, collect, testContext, until } from "../helpers/fake-gpio.js";

const T0 = 1_764_460_800_000;
const PIN = 17;

function input(extra: Record<string, unknown> = {}) {
  return gpioInputSensor.parse({ id: "door", type: "contact", driver: "gpio-input", pin: PIN, debounce: "20ms", ...extra });
}

/** Lets real promise chains and the collector run without moving fake time. */
async function flush() {
  for (let i = 0; i < 5; i++) await immediate();
}

describe("gpio-input", () => {
  let gpio: FakeGpio;
  let driver: Driver | undefined;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"], now: T0 });
    gpio = new FakeGpio();
  });

  afterEach(async () => {
    await driver?.close();
    driver = undefined;
    vi.useRealTimers();
  });

  async function started(cfg = input()) {
    const ctx = testContext({ gpio });
    driver = createGpioInput(cfg, ctx);
    const run = collect(driver.start(new AbortController().signal));
    await until(() => run.items.length === 1, "the initial reading");
    return { ctx, run };
  }

  it("publishes the level when the pin opens, exported with interrupts on both edges (no polling)", async () => {
    gpio.line(PIN).level = 1;
    const { run } = await started();
    expect(run.items[0]).toEqual({ sensor: "door", type: "contact", ts: T0, value: 1, quality: "good" });
    expect(gpio.line(PIN)).toMatchObject({ exported: true, direction: "in", edge: "both" });
    expect(gpio.watched(PIN)).toBe(true);
  });

  it("debounces: a bouncing edge publishes once, after the level held for `debounce`, stamped with the first edge", async () => {
    const { run } = await started();
    await vi.advanceTimersByTimeAsync(1000);
    const edgeAt = Date.now();
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(3);
    gpio.setLevel(PIN, 0);
    await vi.advanceTimersByTimeAsync(3);
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(19);
    await flush();
    expect(run.items).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => run.items.length === 2, "the settled change");
    expect(run.items[1]).toMatchObject({ value: 1, ts: edgeAt });
  });

  it("ignores a glitch shorter than `debounce`", async () => {
    const { run } = await started();
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(10);
    gpio.setLevel(PIN, 0);
    await vi.advanceTimersByTimeAsync(100);
    await flush();
    expect(run.items.map((r) => r.value)).toEqual([0]);
  });

  it("activeLow inverts: a low pin reads 1", async () => {
    gpio.line(PIN).level = 1;
    const { run } = await started(input({ activeLow: true }));
    expect(run.items[0]?.value).toBe(0);
    gpio.setLevel(PIN, 0);
    await vi.advanceTimersByTimeAsync(20);
    await until(() => run.items.length === 2, "the change");
    expect(run.items[1]?.value).toBe(1);
  });

  it("edge `rising` publishes only changes to 1 (logical)", async () => {
    const { run } = await started(input({ edge: "rising" }));
    for (const level of [1, 0, 1, 0] as const) {
      gpio.setLevel(PIN, level);
      await vi.advanceTimersByTimeAsync(50);
    }
    await flush();
    expect(run.items.map((r) => r.value)).toEqual([0, 1, 1]);
  });

  it("publishes the unchanged level every `heartbeat`, counted from the last reading", async () => {
    const { run } = await started(input({ heartbeat: "60s" }));
    await vi.advanceTimersByTimeAsync(59_999);
    await flush();
    expect(run.items).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => run.items.length === 2, "first heartbeat");
    expect(run.items[1]).toMatchObject({ value: 0, ts: T0 + 60_000 });
    // A change at +90 s restarts the heartbeat: next one at +150 s, not +120 s.
    await vi.advanceTimersByTimeAsync(30_000);
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(20);
    await until(() => run.items.length === 3, "the change");
    await vi.advanceTimersByTimeAsync(59_000);
    await flush();
    expect(run.items).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1_000);
    await until(() => run.items.length === 4, "heartbeat after the change");
    expect(run.items[3]).toMatchObject({ value: 1, ts: T0 + 150_020 });
  });

  it("poll() reads the pin now", async () => {
    await started();
    gpio.line(PIN).level = 1; // no interrupt: poll must read the pin itself
    const r = await driver!.poll!();
    expect(r?.[0]).toMatchObject({ sensor: "door", value: 1 });
  });

  it("close() unexports the pin and ends the iterable; safe twice", async () => {
    const { run } = await started();
    await driver!.close();
    await driver!.close();
    await run.done;
    expect(gpio.line(PIN)).toMatchObject({ exported: false, unexports: 1, watchers: [] });
  });

  it("permission denied: reports EGW_GPIO naming the pin and group `gpio`, retries with backoff, then recovers", async () => {
    gpio.failures.set(PIN, "EACCES");
    const ctx = testContext({ gpio });
    driver = createGpioInput(input(), ctx);
    const run = collect(driver.start(new AbortController().signal));
    await until(() => ctx.reports.length === 1, "the error report");
    const report = ctx.reports[0]!;
    expect(report.state).toBe("error");
    if (report.state !== "error") return;
    expect(report.error).toBeInstanceOf(GatewayError);
    expect((report.error as GatewayError).code).toBe("EGW_GPIO");
    expect(report.error.message).toMatch(/GPIO 17/);
    expect(report.error.message).toMatch(/group `gpio`/);
    expect(report.error.message).toMatch(/\/dev\/gpiomem/);
    expect(report.retryInMs).toBeGreaterThan(0);
    expect(ctx.counters.errors).toBe(1);

    await vi.advanceTimersByTimeAsync(report.retryInMs!);
    await until(() => ctx.reports.length === 2, "second attempt");
    expect(ctx.counters.reopens).toBe(1);
    const second = ctx.reports[1]!;
    // Backoff grows: the second wait is about twice the first.
    expect(second.state === "error" && second.retryInMs! > report.retryInMs!).toBe(true);

    gpio.failures.delete(PIN);
    await vi.advanceTimersByTimeAsync(second.state === "error" ? second.retryInMs! : 0);
    await until(() => run.items.length === 1, "reading after recovery");
    expect(ctx.reports[2]).toEqual({ state: "ok" });
  });

  it("pin busy: the error says so and names the likely culprits", async () => {
    gpio.failures.set(PIN, "EBUSY");
    const ctx = testContext({ gpio });
    driver = createGpioInput(input(), ctx);
    collect(driver.start(new AbortController().signal));
    await until(() => ctx.reports.length === 1, "the error report");
    const r = ctx.reports[0]!;
    expect(r.state === "error" && r.error.message).toMatch(/GPIO 17 is busy: another program/);
  });
});
