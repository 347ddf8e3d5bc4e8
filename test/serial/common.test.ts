import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { RejectLog } from "../../src/drivers/serial/common.js";
import { testContext } from "./harness.js";

describe("serial › rejected input", () => {
  it("counts every rejection by reason but logs at most one line per period, with the suppressed count", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    });
    const ctx = { ...testContext(), logger: pino({ level: "info" }, sink) };
    const log = new RejectLog(ctx, "s1", 60_000);
    for (let i = 0; i < 100; i++) log.reject(i % 2 ? "parse" : "checksum", `line ${i}`);
    log.reject("too-long", Buffer.from([0xde, 0xad]));

    expect(ctx.counters.rejected).toEqual({ checksum: 50, parse: 50, "too-long": 1 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ sensor: "s1", reason: "checksum", sample: "line 0", suppressed: 0, msg: "rejected serial input" });

    const fast = new RejectLog(ctx, "s1", 0);
    fast.reject("parse", Buffer.from([0xde, 0xad]));
    expect(lines[1]).toMatchObject({ reason: "parse", sample: "dead" });
  });
});
