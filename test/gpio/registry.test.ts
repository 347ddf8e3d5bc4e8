import { describe, expect, it } from "vitest";
import { validateDocument } from "../../src/config/index.js";
import { createDriver, defaultRegistry } from "../../src/drivers/index.js";
import { FakeGpio, collect, testContext, until } from "../helpers/fake-gpio.js";

describe("registry › GPIO and 1-Wire drivers", () => {
  it("a validated document's gpio-input, gpio-counter and ds18b20 entries build through the default registry", async () => {
    const doc = validateDocument({
      sensors: [
        { id: "door", type: "contact", driver: "gpio-input", pin: 17, activeLow: true },
        { id: "meter", type: "energy", driver: "gpio-counter", pin: 27, perPulse: 1, unit: "Wh" },
        { id: "tank", type: "temperature", driver: "ds18b20" },
      ],
      outputs: [{ id: "relay", pin: 22, initial: 1, activeLow: true }],
    });
    expect(doc.ok).toBe(true);
    if (!doc.ok) return;
    expect(doc.value.outputs[0]).toEqual({ id: "relay", pin: 22, initial: true, activeLow: true });
    const gpio = new FakeGpio();
    gpio.line(17).level = 0;
    const registry = defaultRegistry();
    const door = createDriver(registry, doc.value.sensors[0]!, testContext({ gpio }));
    const run = collect(door.start(new AbortController().signal));
    await until(() => run.items.length === 1, "the door's first reading");
    expect(run.items[0]).toMatchObject({ sensor: "door", value: 1 });
    await door.close();
    await run.done;
    for (const s of doc.value.sensors.slice(1)) expect(createDriver(registry, s, testContext({ gpio }))).toHaveProperty("start");
  });

  it("config errors name the path: a BCM pin out of range, a bad 1-Wire address", () => {
    const doc = validateDocument({
      sensors: [
        { id: "door", type: "contact", driver: "gpio-input", pin: 99 },
        { id: "tank", type: "temperature", driver: "ds18b20", address: "10-000802b5c1a2" },
      ],
    });
    expect(doc.ok).toBe(false);
    if (doc.ok) return;
    expect(doc.problems.map((p) => p.path)).toEqual(["sensors[0].pin", "sensors[1].address"]);
    expect(doc.problems[1]?.message).toMatch(/`auto` or a 1-Wire id like 28-/);
  });
});
