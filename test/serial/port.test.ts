import { SerialPort } from "serialport";
import { afterEach, describe, expect, it, vi } from "vitest";
import { sensorSchema, type SensorOf } from "../../src/config/schema.js";
import { createModbusRtu, createSerialLines, nodeSerialFactory, portManagerFor } from "../../src/drivers/serial/index.js";
import jsmodbus from "jsmodbus";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { waitFor } from "../helpers/wait.js";
import { closeDevices, openDevice, run, stopDrivers, testContext } from "./harness.js";

const kv = (port: string, id = "t1") =>
  sensorSchema.parse({ id, type: "temperature", driver: "serial-lines", format: "kv", field: "t", port }) as SensorOf<"serial-lines">;

const states = (reports: { state: string }[]) => reports.map((r) => r.state);

describe("serial ports › unplug, absence and sharing", () => {
  afterEach(async () => {
    vi.restoreAllMocks();
    await stopDrivers();
    await closeDevices();
    await stopPtyPairs();
    await cleanupTempDirs();
  });

  it("serial-lines: the device disappears mid-stream and comes back on the same path; the driver reopens and continues", async () => {
    const pair = await startPtyPair();
    const ctx = testContext();
    const r = run(createSerialLines(kv(pair.a), ctx));
    let device = await openDevice(pair.b);
    await waitFor(() => ctx.reports.length === 1, { timeout: 15_000, what: "port open" });
    await device.write("t=1\nt=2\nt=");

    await waitFor(() => r.readings.length === 2, { timeout: 15_000, what: "two readings before the unplug" });
    await pair.stop();
    await waitFor(() => states(ctx.reports).includes("error"), { timeout: 15_000, what: "error report after the unplug" });
    const down = ctx.reports.find((h) => h.state === "error");
    expect(down).toMatchObject({ state: "error", retryInMs: expect.any(Number) });

    await pair.start();
    await waitFor(() => states(ctx.reports).at(-1) === "ok", { timeout: 20_000, what: "ok report after the replug" });
    expect(ctx.counters.reopens).toBeGreaterThanOrEqual(1);
    expect(states(ctx.reports)).toEqual(["ok", "error", "ok"]);
    device = await openDevice(pair.b);
    // The half line from before the unplug ("t=") is forgotten, not glued to the next one.
    await device.write("3\nt=4\n");
    await waitFor(() => r.readings.length === 3, { timeout: 15_000, what: "reading after the replug" });
    expect(r.readings.map((x) => x.value)).toEqual([1, 2, 4]);
    expect(ctx.counters.rejected).toEqual({ parse: 1 });
  });

  it("modbus-rtu: polls resume after the bus adapter is unplugged and plugged back in", async () => {
    const pair = await startPtyPair();
    const holding = Buffer.alloc(64);
    holding.writeUInt16BE(1234, 0);
    const attachSlave = async () => {
      const dev = await openDevice(pair.b);
      new jsmodbus.server.RTU(dev.port as never, { holding });
      return dev;
    };
    await attachSlave();
    const ctx = testContext();
    const config = sensorSchema.parse({
      id: "m1", type: "energy", driver: "modbus-rtu", port: pair.a, unitId: 1, interval: "200ms", registers: [{ name: "e", address: 0 }],
    }) as SensorOf<"modbus-rtu">;
    const r = run(createModbusRtu(config, ctx));
    await waitFor(() => r.readings.length >= 2, { timeout: 15_000, what: "readings before the unplug" });

    await pair.stop();
    await waitFor(() => states(ctx.reports).includes("error"), { timeout: 15_000, what: "error report after the unplug" });
    const before = r.readings.length;
    holding.writeUInt16BE(4321, 0);
    await pair.start();
    await attachSlave();
    await waitFor(() => r.readings.some((x) => x.value === 4321), { timeout: 20_000, what: "readings after the replug" });
    expect(ctx.counters.reopens).toBeGreaterThanOrEqual(1);
    expect(states(ctx.reports)).toEqual(["ok", "error", "ok"]);
    expect(r.readings.slice(0, before).every((x) => x.value === 1234)).toBe(true);
  });

  it("a port that does not exist yet is a reported error with retries, and opens once the device appears", async () => {
    const pair = await startPtyPair({ start: false });
    const ctx = testContext();
    const r = run(createSerialLines(kv(pair.a), ctx));
    await waitFor(() => ctx.counters.reopens >= 1, { timeout: 15_000, what: "a reopen attempt" });
    expect(ctx.reports[0]).toMatchObject({ state: "error", retryInMs: expect.any(Number) });
    expect(ctx.reports[0]!.state === "error" && (ctx.reports[0]!.error as Error & { code?: string }).code).toBe("EGW_SERIAL_OPEN");
    expect(r.readings).toEqual([]);

    await pair.start();
    await waitFor(() => states(ctx.reports).at(-1) === "ok", { timeout: 20_000, what: "port open once the device appeared" });
    const device = await openDevice(pair.b);
    await device.write("t=7\n");
    await waitFor(() => r.readings.length === 1, { timeout: 15_000, what: "reading" });
    expect(r.readings[0]!.value).toBe(7);
  });

  it("sensors naming one port share one open port; the last one to stop closes it", async () => {
    const pair = await startPtyPair();
    const serial = nodeSerialFactory();
    const ctxA = testContext(serial);
    const ctxB = testContext(serial);
    const a = run(createSerialLines(kv(pair.a, "a"), ctxA));
    const b = run(createSerialLines(kv(pair.a, "b"), ctxB));
    const device = await openDevice(pair.b);
    await waitFor(() => ctxA.reports.length === 1 && ctxB.reports.length === 1, { timeout: 15_000, what: "both open" });
    // serialport locks the device: a second open of the same path would have failed.
    expect(states([...ctxA.reports, ...ctxB.reports])).toEqual(["ok", "ok"]);
    const manager = portManagerFor(ctxA);
    expect(manager.paths).toEqual([pair.a]);

    await device.write("t=1\n");
    await waitFor(() => a.readings.length === 1 && b.readings.length === 1, { timeout: 15_000, what: "both got the line" });
    await a.stop();
    await device.write("t=2\n");
    await waitFor(() => b.readings.length === 2, { timeout: 15_000, what: "b still reads" });
    expect(a.readings.map((x) => x.value)).toEqual([1]);
    expect(manager.paths).toEqual([pair.a]);
    await b.stop();
    expect(manager.paths).toEqual([]);
  });

  it("never enumerates ports, so a missing udevadm (SerialPort.list() rejecting) cannot hurt", async () => {
    const list = vi.spyOn(SerialPort, "list").mockRejectedValue(Object.assign(new Error("spawn udevadm ENOENT"), { code: "ENOENT" }));
    const pair = await startPtyPair();
    const ctx = testContext();
    const r = run(createSerialLines(kv(pair.a), ctx));
    const device = await openDevice(pair.b);
    await waitFor(() => ctx.reports.length === 1, { timeout: 15_000, what: "port open" });
    await device.write("t=5\n");
    await waitFor(() => r.readings.length === 1, { timeout: 15_000, what: "reading" });
    expect(list).not.toHaveBeenCalled();
  });
});
