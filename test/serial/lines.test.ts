import { afterEach, describe, expect, it } from "vitest";
import { sensorSchema, type SensorOf } from "../../src/config/schema.js";
import { LineSplitter, createSerialLines, lineParser } from "../../src/drivers/serial/index.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { waitFor } from "../helpers/wait.js";
import { closeDevices, openDevice, run, stopDrivers, testContext } from "./harness.js";

const lines = (input: Record<string, unknown>) =>
  sensorSchema.parse({ id: "s1", type: "temperature", driver: "serial-lines", port: "/dev/null", ...input }) as SensorOf<"serial-lines">;

const splitAll = (s: LineSplitter, ...chunks: string[]) => chunks.flatMap((c) => s.push(Buffer.from(c)));

describe("serial-lines › LineSplitter", () => {
  it("splits LF and CRLF lines, skips empty lines, joins lines split across chunks", () => {
    const s = new LineSplitter(100);
    expect(splitAll(s, "a=1\nb=", "2\r", "\n\n\r\nc=3\r\nd")).toEqual([{ line: "a=1" }, { line: "b=2" }, { line: "c=3" }]);
    expect(splitAll(s, "=4\n")).toEqual([{ line: "d=4" }]);
  });

  it("drops a line over maxLength once, even when it spans chunks, then carries on", () => {
    const s = new LineSplitter(8);
    expect(splitAll(s, "12345678\n", "123456789\n", "ok\n")).toEqual([{ line: "12345678" }, { tooLong: true }, { line: "ok" }]);
    expect(splitAll(s, "1234567", "89abc", "defghij", "klm\nnext\n")).toEqual([{ tooLong: true }, { line: "next" }]);
  });

  it("does not count the CR of a CRLF towards the length, even when the CR ends a chunk", () => {
    const s = new LineSplitter(4);
    expect(splitAll(s, "abcd\r", "\n", "abcd\r\n")).toEqual([{ line: "abcd" }, { line: "abcd" }]);
    expect(splitAll(s, "abcde\r\n")).toEqual([{ tooLong: true }]);
  });
});

describe("serial-lines › formats", () => {
  it("json: a dot-path field, or several values; numeric strings count, junk does not", () => {
    const one = lineParser(lines({ format: "json", field: "env.t" }));
    expect(one('{"env":{"t":21.5}}')).toEqual({ value: 21.5 });
    expect(one('{"env":{"t":"22"}}')).toEqual({ value: 22 });
    expect(one('{"env":{"t":"warm"}}')).toBeUndefined();
    expect(one('{"env":{"h":40}}')).toBeUndefined();
    expect(one("{not json")).toBeUndefined();
    const many = lineParser(lines({ format: "json", values: { t: "t", h: "h" } }));
    expect(many('{"t":21.5,"h":40}')).toEqual({ values: { t: 21.5, h: 40 } });
    expect(many('{"t":21.5}')).toBeUndefined();
  });

  it("csv: a column, or several; a custom delimiter", () => {
    expect(lineParser(lines({ format: "csv", column: 1 }))("2026-01-01,21.5,40")).toEqual({ value: 21.5 });
    expect(lineParser(lines({ format: "csv", column: 5 }))("1,2")).toBeUndefined();
    expect(lineParser(lines({ format: "csv", values: { t: 1, h: 2 }, delimiter: ";" }))("x; 21.5 ;40")).toEqual({ values: { t: 21.5, h: 40 } });
    expect(lineParser(lines({ format: "csv", column: 0 }))(",")).toBeUndefined();
  });

  it("kv: `t=21.5 h=40`, also with `:` and `,` separators", () => {
    const p = lineParser(lines({ format: "kv", field: "t" }));
    expect(p("t=21.5 h=40")).toEqual({ value: 21.5 });
    expect(p("h:40, t:-3.5")).toEqual({ value: -3.5 });
    expect(p("h=40")).toBeUndefined();
    expect(lineParser(lines({ format: "kv", values: { temp: "t", hum: "h" } }))("t=21.5 h=40")).toEqual({ values: { temp: 21.5, hum: 40 } });
  });

  it("regex: the named group `value`, or named groups for values", () => {
    expect(lineParser(lines({ format: "regex", pattern: "T:(?<value>[-\\d.]+)C" }))("T:21.5C RH:40%")).toEqual({ value: 21.5 });
    expect(lineParser(lines({ format: "regex", pattern: "T:(?<value>[-\\d.]+)C" }))("garbage")).toBeUndefined();
    const many = lineParser(lines({ format: "regex", pattern: "T:(?<t>[-\\d.]+)C RH:(?<h>\\d+)%", values: { temp: "t", hum: "h" } }));
    expect(many("T:21.5C RH:40%")).toEqual({ values: { temp: 21.5, hum: 40 } });
  });
});

describe("serial-lines › over a real pty", () => {
  afterEach(async () => {
    await stopDrivers();
    await closeDevices();
    await stopPtyPairs();
    await cleanupTempDirs();
  });

  const cases: { format: string; config: Record<string, unknown>; valid: string[]; expected: unknown[] }[] = [
    { format: "json", config: { field: "t" }, valid: ['{"t":1.5}', '{"t":2}', '{"t":-3}'], expected: [1.5, 2, -3] },
    { format: "csv", config: { column: 1 }, valid: ["a,1.5", "b,2", "c,-3"], expected: [1.5, 2, -3] },
    { format: "kv", config: { field: "t" }, valid: ["t=1.5 h=1", "h=2 t=2", "t=-3"], expected: [1.5, 2, -3] },
    { format: "regex", config: { pattern: "^T(?<value>[-\\d.]+)$" }, valid: ["T1.5", "T2", "T-3"], expected: [1.5, 2, -3] },
  ];

  for (const c of cases) {
    it(`${c.format}: exactly the valid values in order, despite junk, CRLF, split writes and overlong lines`, async () => {
      const pair = await startPtyPair();
      const ctx = testContext();
      const driver = createSerialLines(lines({ format: c.format, port: pair.a, maxLineLength: 64, unit: "Cel", ...c.config }), ctx);
      const r = run(driver);
      const device = await openDevice(pair.b);
      await waitFor(() => ctx.reports.some((h) => h.state === "ok"), { timeout: 15_000, what: "port open" });

      const [v1, v2, v3] = c.valid;
      await device.write(`${v1}\r\n`);
      await device.write("\x00\xff junk !!\n");
      await device.write(`${"x".repeat(200)}\n`);
      const half = Math.ceil(v2!.length / 2);
      await device.write(v2!.slice(0, half));
      await device.write(`${v2!.slice(half)}\n`);
      await device.write(`${"y".repeat(40)}`);
      await device.write(`${"y".repeat(40)}\r\n${v3}\n`);

      await waitFor(() => ctx.counters.read === 6, { timeout: 15_000, what: "six lines read" });
      expect(r.readings.map((x) => x.value)).toEqual(c.expected);
      expect(r.readings.every((x) => x.unit === "Cel" && x.sensor === "s1" && x.type === "temperature" && x.quality === "good")).toBe(true);
      expect(ctx.counters.rejected).toEqual({ parse: 1, "too-long": 2 });
      expect(ctx.counters.reopens).toBe(0);
    });
  }
});
