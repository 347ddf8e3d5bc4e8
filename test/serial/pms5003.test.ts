import { afterEach, describe, expect, it } from "vitest";
import { sensorSchema, type SensorOf } from "../../src/config/schema.js";
import { Pms5003Parser, buildPms5003Frame, createPms5003, type PMS5003_VALUES } from "../../src/drivers/serial/index.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { waitFor } from "../helpers/wait.js";
import { closeDevices, openDevice, run, stopDrivers, testContext } from "./harness.js";

type Values = Record<(typeof PMS5003_VALUES)[number], number>;

/**
 * A frame written out byte by byte from the Plantower PMS5003 datasheet (appendix I): start
 * 0x42 0x4D, frame length 2×13+2 = 28, data 1–3 PM (CF=1), data 4–6 PM (atmospheric), data 7–12
 * particle counts per 0.1 L, data 13 reserved, then the check code = sum of all bytes before it.
 */
function datasheetFrame(): Buffer {
  const bytes = [
    0x42, 0x4d, 0x00, 0x1c, // start characters, frame length 28
    0x00, 0x05, 0x00, 0x09, 0x00, 0x0c, // PM1.0/2.5/10 CF=1: 5, 9, 12
    0x00, 0x04, 0x00, 0x08, 0x00, 0x0b, // PM1.0/2.5/10 atmospheric: 4, 8, 11
    0x04, 0xd2, 0x01, 0x6c, 0x00, 0x5a, // >0.3 µm 1234, >0.5 µm 364, >1.0 µm 90
    0x00, 0x0f, 0x00, 0x03, 0x00, 0x01, // >2.5 µm 15, >5.0 µm 3, >10 µm 1
    0x97, 0x00, // reserved (version 0x97, error code 0)
  ];
  const sum = bytes.reduce((a, b) => a + b, 0);
  return Buffer.from([...bytes, sum >> 8, sum & 0xff]);
}

const DATASHEET_VALUES: Values = { pm1_0: 4, pm2_5: 8, pm10: 11, n0_3: 1234, n0_5: 364, n1_0: 90, n2_5: 15, n5_0: 3, n10: 1 };

const frameWith = (atm: [number, number, number]) => buildPms5003Frame([1, 2, 3, ...atm, 600, 200, 50, 10, 2, 1, 0]);

function frames(events: ReturnType<Pms5003Parser["push"]>): Values[] {
  return events.flatMap((e) => ("frame" in e ? [e.frame] : []));
}
function rejected(events: ReturnType<Pms5003Parser["push"]>): string[] {
  return events.flatMap((e) => ("rejected" in e ? [e.rejected] : []));
}

describe("pms5003 › parser", () => {
  it("decodes a datasheet frame: atmospheric PM as pm1_0/pm2_5/pm10 and the six particle counts", () => {
    expect(buildPms5003Frame([5, 9, 12, 4, 8, 11, 1234, 364, 90, 15, 3, 1, 0x9700])).toEqual(datasheetFrame());
    expect(new Pms5003Parser().push(datasheetFrame())).toEqual([{ frame: DATASHEET_VALUES }]);
  });

  it("reassembles a frame delivered one byte at a time", () => {
    const p = new Pms5003Parser();
    const events = [...datasheetFrame()].flatMap((b) => p.push(Buffer.from([b])));
    expect(events).toEqual([{ frame: DATASHEET_VALUES }]);
  });

  it("rejects a bad checksum once, skips garbage between frames, and loses no valid frame", () => {
    const bad = frameWith([7, 7, 7]);
    bad[10] = bad[10]! ^ 0xff;
    const p = new Pms5003Parser();
    const input = Buffer.concat([
      Buffer.from("garbage\x42\x00\x4d"),
      frameWith([1, 2, 3]),
      bad,
      Buffer.from([0x42, 0x4d, 0x00, 0x99, 0x13]), // a header with a wrong length
      frameWith([4, 5, 6]),
      Buffer.from([0x42]),
    ]);
    const events = p.push(input);
    expect(frames(events).map((f) => [f.pm1_0, f.pm2_5, f.pm10])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(rejected(events)).toEqual(["parse", "checksum", "parse"]);
    // The trailing 0x42 may begin the next frame: it is kept, and completes with the rest.
    expect(frames(p.push(frameWith([8, 9, 10]).subarray(1)))).toEqual([expect.objectContaining({ pm1_0: 8, pm2_5: 9, pm10: 10 })]);
  });

  it("finds a real frame that starts inside a false header's 32 bytes", () => {
    const fake = Buffer.from([0x42, 0x4d, 0x00, 0x1c, 0x01, 0x02]);
    const events = new Pms5003Parser().push(Buffer.concat([fake, frameWith([1, 2, 3])]));
    expect(frames(events).map((f) => f.pm2_5)).toEqual([2]);
    expect(rejected(events)).toEqual(["checksum"]);
  });
});

describe("pms5003 › over a real pty", () => {
  afterEach(async () => {
    await stopDrivers();
    await closeDevices();
    await stopPtyPairs();
    await cleanupTempDirs();
  });

  it("publishes exactly the valid frames in order, with units; bad checksums and garbage are counted", async () => {
    const pair = await startPtyPair();
    const ctx = testContext();
    const config = sensorSchema.parse({ id: "pm-1", type: "pm", driver: "pms5003", port: pair.a }) as SensorOf<"pms5003">;
    const r = run(createPms5003(config, ctx));
    const device = await openDevice(pair.b);
    await waitFor(() => ctx.reports.some((h) => h.state === "ok"), { timeout: 15_000, what: "port open" });

    const bad = frameWith([9, 9, 9]);
    bad[31] = bad[31]! ^ 0x01;
    const second = frameWith([4, 5, 6]);
    await device.write(Buffer.from([0x00, 0x13, 0x37]));
    await device.write(datasheetFrame());
    await device.write(bad);
    await device.write(Buffer.from("noise"));
    await device.write(second.subarray(0, 11));
    await device.write(second.subarray(11));
    await device.write(frameWith([7, 8, 9]));

    await waitFor(() => r.readings.length === 3, { timeout: 15_000, what: "three readings" });
    expect(r.readings.map((x) => x.values)).toEqual([
      DATASHEET_VALUES,
      { pm1_0: 4, pm2_5: 5, pm10: 6, n0_3: 600, n0_5: 200, n1_0: 50, n2_5: 10, n5_0: 2, n10: 1 },
      { pm1_0: 7, pm2_5: 8, pm10: 9, n0_3: 600, n0_5: 200, n1_0: 50, n2_5: 10, n5_0: 2, n10: 1 },
    ]);
    expect(r.readings[0]).toMatchObject({ sensor: "pm-1", type: "pm", quality: "good", units: { pm2_5: "ug/m3", n0_3: "count/dL" } });
    expect(ctx.counters.read).toBe(4);
    expect(ctx.counters.rejected).toEqual({ checksum: 1, parse: 2 });
  });
});
