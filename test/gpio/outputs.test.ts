import { afterEach, describe, expect, it } from "vitest";
import { outputSchema } from "../../src/config/schema.js";
import { GatewayError } from "../../src/errors.js";
import { openOutputs, type Outputs } from "../../src/drivers/gpio/index.js";
import type { DriverHealth } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import { FakeGpio } from "../helpers/fake-gpio.js";
import { waitFor } from "../helpers/wait.js";

const configs = (list: Record<string, unknown>[]) => list.map((o) => outputSchema.parse(o));

describe("gpio outputs", () => {
  let outputs: Outputs | undefined;
  afterEach(async () => {
    await outputs?.close();
    outputs = undefined;
  });

  it("exports each pin as an output already at its initial level, honouring activeLow", async () => {
    const gpio = new FakeGpio();
    outputs = await openOutputs(
      configs([
        { id: "relay", pin: 22, initial: true, activeLow: true },
        { id: "led", pin: 23 },
        { id: "fan", pin: 24, initial: 1 },
      ]),
      { logger: silentLogger(), hardware: { gpio } },
    );
    expect(gpio.line(22)).toMatchObject({ exported: true, direction: "low", level: 0 });
    expect(gpio.line(23)).toMatchObject({ exported: true, direction: "low", level: 0 });
    expect(gpio.line(24)).toMatchObject({ exported: true, direction: "high", level: 1 });
    expect([outputs.get("relay"), outputs.get("led"), outputs.get("fan")]).toEqual([true, false, true]);
  });

  it("set(id, value) drives the pin (inverted when activeLow) and get() reports the logical value", async () => {
    const gpio = new FakeGpio();
    outputs = await openOutputs(configs([{ id: "relay", pin: 22, activeLow: true }, { id: "led", pin: 23 }]), {
      logger: silentLogger(),
      hardware: { gpio },
    });
    await outputs.set("relay", true);
    await outputs.set("led", 1);
    expect(gpio.line(22).level).toBe(0);
    expect(gpio.line(23).level).toBe(1);
    await outputs.set("relay", false);
    expect(gpio.line(22).writes).toEqual([1, 0, 1]);
    expect(outputs.get("relay")).toBe(false);
    expect(outputs.list()).toEqual([
      { id: "relay", pin: 22, activeLow: true, value: false },
      { id: "led", pin: 23, activeLow: false, value: true },
    ]);
  });

  it("an unknown id is rejected with EGW_GPIO naming the configured outputs", async () => {
    outputs = await openOutputs(configs([{ id: "relay", pin: 22 }]), { logger: silentLogger(), hardware: { gpio: new FakeGpio() } });
    const err = await outputs.set("pump", true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("EGW_GPIO");
    expect((err as Error).message).toMatch(/unknown output "pump": configured outputs are relay/);
    expect(outputs.get("pump")).toBeUndefined();
  });

  it("close() unexports every pin, is safe twice, and later set() is rejected", async () => {
    const gpio = new FakeGpio();
    outputs = await openOutputs(configs([{ id: "relay", pin: 22 }, { id: "led", pin: 23 }]), { logger: silentLogger(), hardware: { gpio } });
    await outputs.close();
    await outputs.close();
    expect(gpio.line(22)).toMatchObject({ exported: false, unexports: 1 });
    expect(gpio.line(23)).toMatchObject({ exported: false, unexports: 1 });
    await expect(outputs.set("relay", true)).rejects.toThrow(/outputs are closed/);
  });

  it("a pin that cannot be opened is reported, does not stop the others, and is retried until it opens at its initial level", async () => {
    const gpio = new FakeGpio();
    gpio.failures.set(24, "EACCES");
    const reports: [string, DriverHealth][] = [];
    outputs = await openOutputs(configs([{ id: "fan", pin: 24, initial: true }, { id: "led", pin: 23, initial: true }]), {
      logger: silentLogger(),
      hardware: { gpio },
      report: (id, h) => reports.push([id, h]),
    });
    expect(outputs.get("led")).toBe(true);
    expect(outputs.get("fan")).toBeUndefined();
    expect(outputs.list()[0]?.error).toMatch(/GPIO 24: permission denied: add the service user to group `gpio`/);
    expect(reports[0]?.[0]).toBe("fan");
    expect(reports[0]?.[1].state).toBe("error");
    await expect(outputs.set("fan", false)).rejects.toThrow(/GPIO 24: permission denied/);

    gpio.failures.delete(24);
    await waitFor(() => outputs!.get("fan") === true, { what: "the background retry to open the fan output" });
    expect(gpio.line(24)).toMatchObject({ exported: true, direction: "high" });
    expect(reports.at(-1)).toEqual(["fan", { state: "ok" }]);
  });
});
