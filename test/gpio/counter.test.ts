import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { gpioCounterSensor } from "../../src/config/schema.js";
import { counterStatePath, createGpioCounter } from "../../src/drivers/gpio/index.js";
import type { Driver } from "../../src/drivers/types.js";
import { FakeGpio, collect, testContext, until } from "../helpers/fake-gpio.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";

const T0 = 1_764_460_800_000;
const PIN = 27;

function counter(extra: Record<string, unknown> = {}) {
  return gpioCounterSensor.parse({ id: "water", type: "flow", driver: "gpio-counter", pin: PIN, interval: "10s", ...extra });
}

describe("gpio-counter", () => {
  let gpio: FakeGpio;
  let stateDir: string;
  const drivers: Driver[] = [];

  beforeEach(async () => {
    stateDir = await tempDir("gpio-counter-");
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date", "performance"], now: T0 });
    gpio = new FakeGpio();
  });

  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.close();
    vi.useRealTimers();
    await cleanupTempDirs();
  });

  async function started(cfg = counter()) {
    const ctx = testContext({ gpio, stateDir });
    const driver = createGpioCounter(cfg, ctx);
    drivers.push(driver);
    const run = collect(driver.start(new AbortController().signal));
    await until(() => gpio.watched(PIN), "the pin to be watched");
    return { ctx, driver, run };
  }

  /** `n` clean pulses of 20 ms high / 20 ms low. */
  async function pulses(n: number) {
    for (let i = 0; i < n; i++) {
      gpio.setLevel(PIN, 1);
      await vi.advanceTimersByTimeAsync(20);
      gpio.setLevel(PIN, 0);
      await vi.advanceTimersByTimeAsync(20);
    }
  }

  it("every interval publishes values {count, rate}: count = pulses × perPulse, rate per second over the interval", async () => {
    const { run } = await started(counter({ perPulse: 0.5, unit: "L" }));
    await pulses(20); // 800 ms
    await vi.advanceTimersByTimeAsync(10_000 - 800);
    await until(() => run.items.length === 1, "first interval reading");
    expect(run.items[0]).toEqual({
      sensor: "water",
      type: "flow",
      ts: T0 + 10_000,
      values: { count: 10, rate: 1 },
      units: { count: "L", rate: "L/s" },
      quality: "good",
    });
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => run.items.length === 2, "second interval reading");
    expect(run.items[1]?.values).toEqual({ count: 10, rate: 0 });
  });

  it("debounce: a bouncing pulse counts once; units default to count and 1/s", async () => {
    const { run } = await started();
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(1);
    gpio.setLevel(PIN, 0);
    await vi.advanceTimersByTimeAsync(1);
    gpio.setLevel(PIN, 1);
    await vi.advanceTimersByTimeAsync(30);
    gpio.setLevel(PIN, 0);
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => run.items.length === 1, "interval reading");
    expect(run.items[0]).toMatchObject({ values: { count: 1, rate: 0.1 }, units: { count: "count", rate: "1/s" } });
  });

  it("edge `falling` with activeLow counts physical rising edges", async () => {
    const { run } = await started(counter({ edge: "falling", activeLow: true }));
    await pulses(3); // each pulse: physical 0→1 (logical 1→0 = falling), 1→0
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => run.items.length === 1, "interval reading");
    expect(run.items[0]?.values?.count).toBe(3);
  });

  it("the total survives a restart: a new driver instance continues from the persisted count (atomic file, no temp left)", async () => {
    const first = await started();
    await pulses(4);
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => first.run.items.length === 1, "first driver's reading");
    expect(first.run.items[0]?.values?.count).toBe(4);
    await pulses(1); // counted, not yet published: must be saved on close
    await first.driver.close();
    await first.run.done;
    const saved = JSON.parse(await readFile(counterStatePath(stateDir, "water"), "utf8"));
    expect(saved).toMatchObject({ version: 1, base: 0, pulses: 5, perPulse: 1 });
    expect(await readdir(stateDir)).toEqual(["gpio-counter-water.json"]);

    const second = await started();
    await pulses(3);
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => second.run.items.length === 1, "second driver's reading");
    expect(second.run.items[0]?.values).toMatchObject({ count: 8 });
  });

  it("a changed perPulse applies to new pulses only", async () => {
    await writeFile(counterStatePath(stateDir, "water"), JSON.stringify({ version: 1, base: 0, pulses: 10, perPulse: 1, updatedAt: T0 }));
    const { run } = await started(counter({ perPulse: 0.5 }));
    await pulses(2);
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => run.items.length === 1, "interval reading");
    expect(run.items[0]?.values?.count).toBe(11);
  });

  it("a corrupt state file is kept aside and counting restarts from 0", async () => {
    await writeFile(counterStatePath(stateDir, "water"), "{not json");
    const { ctx, run } = await started();
    await pulses(2);
    await vi.advanceTimersByTimeAsync(10_000);
    await until(() => run.items.length === 1, "interval reading");
    expect(run.items[0]?.values?.count).toBe(2);
    expect(ctx.counters.errors).toBe(1);
    expect((await readdir(stateDir)).some((n) => n.startsWith("gpio-counter-water.json.corrupt-"))).toBe(true);
  });

  it("GPIO unavailable: reports EGW_GPIO and publishes nothing", async () => {
    gpio.failures.set(PIN, "EACCES");
    const ctx = testContext({ gpio, stateDir });
    const driver = createGpioCounter(counter(), ctx);
    drivers.push(driver);
    const run = collect(driver.start(new AbortController().signal));
    await until(() => ctx.reports.length === 1, "the error report");
    expect(ctx.reports[0]?.state === "error" && ctx.reports[0].error.message).toMatch(/GPIO 27: permission denied/);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(run.items).toEqual([]);
    await expect(driver.poll!()).rejects.toThrow(/GPIO 27 is not open/);
  });
});
