import { describe, expect, it } from "vitest";
import { decodeMessage, Payload } from "../../src/bridge/mqtt/decode.js";
import { getPath, MISSING, parseTime, toNumber } from "../../src/bridge/mqtt/payload.js";
import { mqttSubscriptionSchema } from "../../src/config/schema.js";

const NOW = Date.parse("2026-06-01T10:00:00Z");
const sub = (s: Record<string, unknown>) => mqttSubscriptionSchema.parse({ topic: "t/+", type: "temperature", id: "s-{1}", ...s });
const payload = (s: string) => new Payload(Buffer.from(s));

describe("mqtt payload paths and numbers", () => {
  it("follows dot paths into objects and arrays by index", () => {
    const doc = { DS18B20: { Temperature: 21.5 }, list: [{ v: 1 }, { v: 2 }], n: null };
    expect(getPath(doc, "DS18B20.Temperature")).toBe(21.5);
    expect(getPath(doc, "list.1.v")).toBe(2);
    expect(getPath(doc, "list.2.v")).toBe(MISSING);
    expect(getPath(doc, "list.x")).toBe(MISSING);
    expect(getPath(doc, "n")).toBeNull();
    expect(getPath(doc, "n.x")).toBe(MISSING);
    expect(getPath(doc, "toString")).toBe(MISSING);
  });

  it("coerces numbers, numeric strings, booleans and ON/OFF; nothing else", () => {
    expect(toNumber(3)).toBe(3);
    expect(toNumber(" 21.5 ")).toBe(21.5);
    expect(toNumber("-1e3")).toBe(-1000);
    expect(toNumber(true)).toBe(1);
    expect(toNumber("ON")).toBe(1);
    expect(toNumber("off")).toBe(0);
    expect(toNumber("False")).toBe(0);
    for (const bad of ["", "NaN", "Infinity", "0x10", "12abc", "open", null, {}, [1], Number.NaN]) expect(toNumber(bad)).toBeUndefined();
  });

  it("parses payload times: ISO 8601, epoch s and ms; refuses implausible ones", () => {
    expect(parseTime("2026-05-31T22:00:00Z", NOW)).toBe(Date.parse("2026-05-31T22:00:00Z"));
    expect(parseTime("2026-05-31T22:00:00.250+02:00", NOW)).toBe(Date.parse("2026-05-31T20:00:00.250Z"));
    expect(parseTime("2026-05-31 22:00:00", NOW)).toBe(new Date(2026, 4, 31, 22, 0, 0).getTime()); // local time
    expect(parseTime(1780300000, NOW)).toBe(1780300000_000);
    expect(parseTime(1780300000123, NOW)).toBe(1780300000123);
    expect(parseTime("1780300000", NOW)).toBe(1780300000_000);
    expect(parseTime("1970-01-01T00:05:00", NOW)).toBeUndefined(); // Tasmota before NTP
    expect(parseTime(NOW + 2 * 86_400_000, NOW)).toBeUndefined();
    expect(parseTime("yesterday", NOW)).toBeUndefined();
    expect(parseTime("Mon, 01 Jun 2026 10:00:00 GMT", NOW)).toBeUndefined();
  });
});

describe("mqtt message decoding", () => {
  it("takes ts from timePath when usable, else receive time with quality uncertain", () => {
    const s = sub({ valuePath: "v", timePath: "Time" });
    const ok = decodeMessage(s, ["a"], payload('{"v":1,"Time":"2026-06-01T09:59:00Z"}'), NOW);
    expect(ok).toMatchObject({ ok: true, badTime: false, reading: { ts: Date.parse("2026-06-01T09:59:00Z"), quality: "good", sensor: "s-a" } });
    const bad = decodeMessage(s, ["a"], payload('{"v":1,"Time":"1970-01-01T00:00:09"}'), NOW);
    expect(bad).toMatchObject({ ok: true, badTime: true, reading: { ts: NOW, quality: "uncertain" } });
    const none = decodeMessage(sub({ valuePath: "v" }), ["a"], payload('{"v":1}'), NOW);
    expect(none).toMatchObject({ ok: true, reading: { ts: NOW, quality: "good" } });
  });

  it("names the reason for junk", () => {
    const v = sub({ valuePath: "a.b" });
    expect(decodeMessage(v, ["x"], payload("nope"), NOW)).toEqual({ ok: false, reason: "not-json" });
    expect(decodeMessage(v, ["x"], payload("{}"), NOW)).toEqual({ ok: false, reason: "missing-path" });
    expect(decodeMessage(v, ["x"], payload('{"a":{"b":null}}'), NOW)).toEqual({ ok: false, reason: "missing-path" });
    expect(decodeMessage(v, ["x"], payload('{"a":{"b":"hot"}}'), NOW)).toEqual({ ok: false, reason: "not-numeric" });
    expect(decodeMessage(v, ["x"], payload(""), NOW)).toEqual({ ok: false, reason: "empty" });
    expect(decodeMessage(v, ["x"], new Payload(Buffer.alloc(300 * 1024, 0x20)), NOW)).toEqual({ ok: false, reason: "too-long" });
    expect(decodeMessage(sub({ id: "{1}" }), [""], payload("1"), NOW)).toEqual({ ok: false, reason: "invalid-id" });
  });

  it("plain payloads: numbers, JSON strings and booleans, ON/OFF", () => {
    const p = sub({});
    expect(decodeMessage(p, ["x"], payload("21.5"), NOW)).toMatchObject({ ok: true, reading: { value: 21.5 } });
    expect(decodeMessage(p, ["x"], payload('"21.5"'), NOW)).toMatchObject({ ok: true, reading: { value: 21.5 } });
    expect(decodeMessage(p, ["x"], payload("true"), NOW)).toMatchObject({ ok: true, reading: { value: 1 } });
    expect(decodeMessage(p, ["x"], payload("OFF"), NOW)).toMatchObject({ ok: true, reading: { value: 0 } });
    expect(decodeMessage(p, ["x"], payload('{"v":1}'), NOW)).toEqual({ ok: false, reason: "not-numeric" });
  });

  it("values: keeps the names found, skips the message only when none is usable", () => {
    const m = sub({ values: { t: "temperature", h: "humidity" }, units: { t: "Cel", h: "%RH" } });
    expect(decodeMessage(m, ["x"], payload('{"temperature":20}'), NOW)).toMatchObject({ ok: true, reading: { values: { t: 20 }, units: { t: "Cel" } } });
    expect(decodeMessage(m, ["x"], payload('{"temperature":"x"}'), NOW)).toEqual({ ok: false, reason: "not-numeric" });
    expect(decodeMessage(m, ["x"], payload('{"linkquality":5}'), NOW)).toEqual({ ok: false, reason: "missing-path" });
  });
});
