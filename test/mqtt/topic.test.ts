import { describe, expect, it } from "vitest";
import { TopicCaptures, matchTopic, renderId, sanitizeLevel } from "../../src/bridge/mqtt/topic.js";

describe("mqtt topic matching", () => {
  it("matches + as exactly one level and captures it", () => {
    expect(matchTopic("tele/+/SENSOR", "tele/kitchen/SENSOR")).toEqual(["kitchen"]);
    expect(matchTopic("tele/+/SENSOR", "tele/a/b/SENSOR")).toBeUndefined();
    expect(matchTopic("tele/+/SENSOR", "tele/kitchen/STATE")).toBeUndefined();
    expect(matchTopic("a/+/+", "a/1/2")).toEqual(["1", "2"]);
    expect(matchTopic("a/+", "a/")).toEqual([""]);
    expect(matchTopic("a/+", "a")).toBeUndefined();
  });

  it("matches # as the rest of the topic (joined with '/'), including zero levels", () => {
    expect(matchTopic("zigbee2mqtt/#", "zigbee2mqtt/living/lamp")).toEqual(["living/lamp"]);
    expect(matchTopic("zigbee2mqtt/#", "zigbee2mqtt")).toEqual([""]);
    expect(matchTopic("+/x/#", "a/x/b/c")).toEqual(["a", "b/c"]);
    expect(matchTopic("#", "any/thing")).toEqual(["any/thing"]);
  });

  it("matches literal filters exactly", () => {
    expect(matchTopic("a/b", "a/b")).toEqual([]);
    expect(matchTopic("a/b", "a/b/c")).toBeUndefined();
    expect(matchTopic("a/b", "a")).toBeUndefined();
  });

  it("does not match $-topics with a leading wildcard", () => {
    expect(matchTopic("#", "$SYS/broker/uptime")).toBeUndefined();
    expect(matchTopic("+/broker/uptime", "$SYS/broker/uptime")).toBeUndefined();
    expect(matchTopic("$SYS/#", "$SYS/broker/uptime")).toEqual(["broker/uptime"]);
  });
});

describe("mqtt id templating", () => {
  it("replaces every character outside [A-Za-z0-9_-] with _", () => {
    expect(sanitizeLevel("Living Room.sensor")).toBe("Living_Room_sensor");
    expect(sanitizeLevel("a/b*c>d")).toBe("a_b_c_d");
    expect(sanitizeLevel("Küche")).toBe("K_che");
    expect(sanitizeLevel("0x00158d_01-x")).toBe("0x00158d_01-x");
  });

  it("renders {n} with sanitised captures; an empty result is refused", () => {
    expect(renderId("tasmota-{1}", ["kitchen"])).toBe("tasmota-kitchen");
    expect(renderId("{2}_{1}", ["a.b", "c d"])).toBe("c_d_a_b");
    expect(renderId("{1}", [""])).toBeUndefined();
    expect(renderId("x-{1}", [""])).toBe("x-");
    expect(renderId("{3}", ["a"])).toBeUndefined();
    expect(renderId("fixed", [])).toBe("fixed");
  });
});

describe("mqtt per-topic captures", () => {
  it("matches a topic once per filter: the same frozen captures for every message of it, null where a filter does not match, and starts over at its limit", () => {
    const t = new TopicCaptures(["tele/+/SENSOR", "zigbee2mqtt/#"], 2);
    const first = t.of("tele/kitchen/SENSOR");
    expect(first).toEqual([["kitchen"], null]);
    expect(Object.isFrozen(first[0])).toBe(true);
    expect(t.of("tele/kitchen/SENSOR")).toBe(first); // remembered: renderId's cache hits
    expect(renderId("tasmota-{1}", first[0]!)).toBe("tasmota-kitchen");
    t.of("zigbee2mqtt/a/b");
    t.of("zigbee2mqtt/c"); // third topic: over the limit of 2, starts over
    const again = t.of("tele/kitchen/SENSOR");
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
