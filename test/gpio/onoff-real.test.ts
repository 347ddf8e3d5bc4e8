/**
 * The REAL onoff module (with its native epoll binding). This machine has no sysfs GPIO, so
 * `Gpio.accessible` is false: the factory and the drivers must turn that into a clear error.
 */
import { afterEach, describe, expect, it } from "vitest";
import { gpioInputSensor, gpioCounterSensor } from "../../src/config/schema.js";
import { GatewayError } from "../../src/errors.js";
import { createGpioCounter, createGpioInput, createOnoffGpioFactory } from "../../src/drivers/gpio/index.js";
import type { Driver } from "../../src/drivers/types.js";
import { collect, testContext } from "../helpers/fake-gpio.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const onoff = await import("onoff");
const accessible = onoff.Gpio.accessible;

// On a real Pi with GPIO access the error path cannot happen: this suite is for machines without it (CI).
describe.skipIf(accessible)("real onoff without GPIO access", () => {
  const drivers: Driver[] = [];
  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.close();
    await cleanupTempDirs();
  });

  it("loads the real module and reports Gpio.accessible = false", () => {
    expect(typeof onoff.Gpio).toBe("function");
    expect(accessible).toBe(false);
  });

  it("open() rejects with EGW_GPIO naming the pin, group `gpio` and /dev/gpiomem", async () => {
    const err = await createOnoffGpioFactory().open(17, "in", "both").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("EGW_GPIO");
    expect((err as Error).message).toMatch(/^GPIO 17: GPIO is not accessible \(cannot open \/sys\/class\/gpio\/export for writing\)/);
    expect((err as Error).message).toMatch(/group `gpio`/);
    expect((err as Error).message).toMatch(/\/dev\/gpiomem/);
  });

  it("gpio-input and gpio-counter on the default (onoff) factory report the error and keep running until closed", async () => {
    const inputCtx = testContext();
    const input = createGpioInput(gpioInputSensor.parse({ id: "door", type: "contact", driver: "gpio-input", pin: 5 }), inputCtx);
    const counterCtx = testContext({ stateDir: await tempDir("onoff-counter-") });
    const counter = createGpioCounter(gpioCounterSensor.parse({ id: "meter", type: "energy", driver: "gpio-counter", pin: 6 }), counterCtx);
    drivers.push(input, counter);
    const runs = [collect(input.start(new AbortController().signal)), collect(counter.start(new AbortController().signal))];
    await waitFor(() => inputCtx.reports.length > 0 && counterCtx.reports.length > 0, { what: "both error reports" });
    for (const [ctx, pin] of [[inputCtx, 5], [counterCtx, 6]] as const) {
      const r = ctx.reports[0]!;
      expect(r.state).toBe("error");
      if (r.state !== "error") continue;
      expect((r.error as GatewayError).code).toBe("EGW_GPIO");
      expect(r.error.message).toContain(`GPIO ${pin}: GPIO is not accessible`);
      expect(r.retryInMs).toBeGreaterThan(0);
    }
    await input.close();
    await counter.close();
    await Promise.all(runs.map((r) => r.done));
    expect(runs.every((r) => r.items.length === 0)).toBe(true);
  });
});
