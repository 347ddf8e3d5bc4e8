import { describe, expect, it } from "vitest";
import { validateDocument } from "../../src/config/load.js";

const doc = (subscriptions: unknown[], extra: Record<string, unknown> = {}) => ({ mqtt: { url: "mqtt://127.0.0.1:1883", subscriptions, ...extra } });
const problems = (subscriptions: unknown[], extra?: Record<string, unknown>) => {
  const v = validateDocument(doc(subscriptions, extra));
  return v.ok ? [] : v.problems;
};

describe("mqtt config validation", () => {
  it("accepts a Tasmota and a zigbee2mqtt subscription and fills defaults", () => {
    const v = validateDocument(
      doc([
        { topic: "tele/+/SENSOR", type: "temperature", id: "tasmota-{1}", valuePath: "DS18B20.Temperature", unit: "Cel" },
        { topic: "zigbee2mqtt/#", type: "climate", id: "z2m-{1}", values: { temperature: "temperature" } },
      ]),
    );
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.mqtt).toMatchObject({ protocolVersion: 5, sessionExpiry: 86_400_000 });
    expect(v.value.mqtt?.subscriptions[0]?.qos).toBe(1);
  });

  it("rejects {n} beyond the topic's wildcards, naming the path", () => {
    expect(problems([{ topic: "tele/+/SENSOR", type: "t", id: "x-{1}-{3}" }])).toEqual([
      { path: "mqtt.subscriptions[0].id", message: 'id uses {3} but topic "tele/+/SENSOR" has only 1 wildcard level ({1})' },
    ]);
    expect(problems([{ topic: "a/b", type: "t", id: "{1}" }])[0]).toMatchObject({ path: "mqtt.subscriptions[0].id", message: expect.stringMatching(/has no wildcards/) });
    expect(problems([{ topic: "a/+", type: "t", id: "{0}" }])[0]?.path).toBe("mqtt.subscriptions[0].id");
  });

  it("rejects valuePath together with values, units without values, units for unknown names", () => {
    expect(problems([{ topic: "a/+", type: "t", id: "x", valuePath: "v", values: { a: "a" } }])).toEqual([
      { path: "mqtt.subscriptions[0].values", message: "give either `valuePath` (one value) or `values` (several), not both" },
    ]);
    expect(problems([{ topic: "a/+", type: "t", id: "x", units: { a: "Cel" } }])[0]?.path).toBe("mqtt.subscriptions[0].units");
    expect(problems([{ topic: "a/+", type: "t", id: "x", values: { a: "a" }, units: { b: "Cel" } }])[0]?.path).toBe("mqtt.subscriptions[0].units.b");
  });

  it("rejects invalid id templates, types and topic filters", () => {
    expect(problems([{ topic: "a/+", type: "t", id: "kitchen.{1}" }])[0]?.path).toBe("mqtt.subscriptions[0].id");
    expect(problems([{ topic: "a/+", type: "t", id: "{x}" }])[0]?.path).toBe("mqtt.subscriptions[0].id");
    expect(problems([{ topic: "a/+", type: "temp.c", id: "x" }])[0]?.path).toBe("mqtt.subscriptions[0].type");
    for (const topic of ["a/#/b", "a/b#", "a+/b", "", "$share/g/a/+"]) {
      expect(problems([{ topic, type: "t", id: "x" }])[0]?.path, topic).toBe("mqtt.subscriptions[0].topic");
    }
  });

  it("rejects a broker url without a usable host or port", () => {
    for (const url of ["mqtt://", "mqtt://127.0.0.1:99999", "tcp://a b", "http://x"]) {
      const v = validateDocument({ mqtt: { url } });
      expect(v.ok ? [] : v.problems.map((p) => p.path), url).toEqual(["mqtt.url"]);
    }
  });

  it("reports every problem at once", () => {
    expect(problems([{ topic: "a/+", type: "t", id: "{2}" }, { topic: "a#", type: "t.t", id: "x" }]).map((p) => p.path).sort()).toEqual([
      "mqtt.subscriptions[0].id",
      "mqtt.subscriptions[1].topic",
      "mqtt.subscriptions[1].type",
    ]);
  });
});
