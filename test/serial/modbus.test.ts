import { EventEmitter } from "node:events";
import jsmodbus from "jsmodbus";
import { afterEach, describe, expect, it } from "vitest";
import { sensorSchema, type SensorOf } from "../../src/config/schema.js";
import { createModbusRtu, decodeRegister, nodeSerialFactory } from "../../src/drivers/serial/index.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { waitFor } from "../helpers/wait.js";
import { closeDevices, openDevice, run, stopDrivers, testContext, type Device } from "./harness.js";

type Config = SensorOf<"modbus-rtu">;
const modbus = (input: Record<string, unknown>) =>
  sensorSchema.parse({ type: "energy", driver: "modbus-rtu", ...input }) as Config;

/** Register images written with Node's Buffer, independently of the driver's decoder. */
class Image {
  readonly buf = Buffer.alloc(64);
  u16(addr: number, v: number) {
    this.buf.writeUInt16BE(v, addr * 2);
    return this;
  }
  i16(addr: number, v: number) {
    this.buf.writeInt16BE(v, addr * 2);
    return this;
  }
  /** 32-bit value; `le` puts the low word in the first register. */
  w32(addr: number, write: (b: Buffer) => void, order: "be" | "le") {
    const b = Buffer.alloc(4);
    write(b);
    const words = order === "be" ? [b.subarray(0, 2), b.subarray(2)] : [b.subarray(2), b.subarray(0, 2)];
    Buffer.concat(words).copy(this.buf, addr * 2);
    return this;
  }
}

const unit1Holding = new Image()
  .u16(0, 65000)
  .i16(1, -1234)
  .w32(2, (b) => b.writeUInt32BE(4_000_000_000), "be")
  .w32(4, (b) => b.writeUInt32BE(4_000_000_000), "le")
  .w32(6, (b) => b.writeInt32BE(-123_456_789), "be")
  .w32(8, (b) => b.writeInt32BE(-123_456_789), "le")
  .w32(10, (b) => b.writeFloatBE(21.5), "be")
  .w32(12, (b) => b.writeFloatBE(-3.25), "le")
  .w32(14, (b) => b.writeFloatBE(1.1), "be")
  .u16(16, 215);
const unit1Input = new Image().i16(0, -40).w32(2, (b) => b.writeFloatBE(1013.25), "le");
const unit2Holding = new Image().u16(0, 42);

const UNIT1_REGISTERS = [
  { name: "u16", address: 0, dataType: "uint16" },
  { name: "i16", address: 1, dataType: "int16" },
  { name: "u32be", address: 2, dataType: "uint32", wordOrder: "be" },
  { name: "u32le", address: 4, dataType: "uint32", wordOrder: "le" },
  { name: "i32be", address: 6, dataType: "int32", wordOrder: "be" },
  { name: "i32le", address: 8, dataType: "int32", wordOrder: "le" },
  { name: "f32be", address: 10, dataType: "float32", wordOrder: "be", unit: "Cel" },
  { name: "f32le", address: 12, dataType: "float32", wordOrder: "le" },
  { name: "f32imprecise", address: 14, dataType: "float32" },
  { name: "scaled", address: 16, dataType: "uint16", scale: 0.1, unit: "Cel" },
  { name: "in_i16", address: 0, table: "input", dataType: "int16" },
  { name: "in_f32le", address: 2, table: "input", dataType: "float32", wordOrder: "le", unit: "hPa" },
];
const UNIT1_VALUES = {
  u16: 65000,
  i16: -1234,
  u32be: 4_000_000_000,
  u32le: 4_000_000_000,
  i32be: -123_456_789,
  i32le: -123_456_789,
  f32be: 21.5,
  f32le: -3.25,
  f32imprecise: 1.1,
  scaled: 21.5,
  in_i16: -40,
  in_f32le: 1013.25,
};

/**
 * Modbus RTU slaves from jsmodbus (an implementation independent of modbus-serial) on the
 * device end of the pty. jsmodbus answers every unit id, so a small router hands each 8-byte
 * FC3/FC4 request to the server of its unit id and drops requests for absent units.
 */
/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), appended low byte first. */
function withCrc(frame: number[]): Buffer {
  let crc = 0xffff;
  for (const byte of frame) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return Buffer.from([...frame, crc & 0xff, crc >> 8]);
}

/** Answers a request itself instead of the slave (faults the slave cannot produce). */
type Override = (request: Buffer) => Buffer | undefined;

function startSlaves(
  device: Device,
  units: Record<number, { holding: Buffer; input?: Buffer }>,
  override: Override = () => undefined,
): { requests: Map<number, number> } {
  const sockets = new Map<number, EventEmitter>();
  const requests = new Map<number, number>();
  for (const [id, regs] of Object.entries(units)) {
    const socket = Object.assign(new EventEmitter(), {
      write: (data: Buffer, cb?: () => void) => device.port.write(data, cb),
    });
    new jsmodbus.server.RTU(socket as never, { holding: regs.holding, input: regs.input ?? Buffer.alloc(64) });
    sockets.set(Number(id), socket);
  }
  let pending = Buffer.alloc(0);
  device.onData((chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const request = pending.subarray(0, 8);
      pending = pending.subarray(8);
      const unit = request[0]!;
      requests.set(unit, (requests.get(unit) ?? 0) + 1);
      const answer = override(request);
      if (answer) device.port.write(answer);
      else sockets.get(unit)?.emit("data", Buffer.from(request));
    }
  });
  return { requests };
}

describe("modbus-rtu › decoding", () => {
  it("decodes every data type in both word orders, with scale", () => {
    const b = (...words: number[]) => Buffer.from(words.flatMap((w) => [w >> 8, w & 0xff]));
    expect(decodeRegister(b(0xffff), { dataType: "uint16", wordOrder: "be", scale: 1 })).toBe(65535);
    expect(decodeRegister(b(0xffff), { dataType: "int16", wordOrder: "be", scale: 1 })).toBe(-1);
    expect(decodeRegister(b(0x0001, 0x0002), { dataType: "uint32", wordOrder: "be", scale: 1 })).toBe(65538);
    expect(decodeRegister(b(0x0002, 0x0001), { dataType: "uint32", wordOrder: "le", scale: 1 })).toBe(65538);
    expect(decodeRegister(b(0xffff, 0xfffe), { dataType: "int32", wordOrder: "be", scale: 1 })).toBe(-2);
    expect(decodeRegister(b(0xfffe, 0xffff), { dataType: "int32", wordOrder: "le", scale: 1 })).toBe(-2);
    expect(decodeRegister(b(0x41ac, 0x0000), { dataType: "float32", wordOrder: "be", scale: 1 })).toBe(21.5);
    expect(decodeRegister(b(0x0000, 0x41ac), { dataType: "float32", wordOrder: "le", scale: 1 })).toBe(21.5);
    expect(decodeRegister(b(215), { dataType: "uint16", wordOrder: "be", scale: 0.1 })).toBe(21.5);
    expect(decodeRegister(b(0xfff6), { dataType: "int16", wordOrder: "be", scale: 0.01 })).toBe(-0.1);
  });
});

describe("modbus-rtu › against jsmodbus slaves over a real pty", () => {
  afterEach(async () => {
    await stopDrivers();
    await closeDevices();
    await stopPtyPairs();
    await cleanupTempDirs();
  });

  it("reads every data type and word order; two units share the port; an absent unit only costs its own timeout", async () => {
    const pair = await startPtyPair();
    const device = await openDevice(pair.b, 19200);
    const { requests } = startSlaves(device, {
      1: { holding: unit1Holding.buf, input: unit1Input.buf },
      2: { holding: unit2Holding.buf },
    });
    // One factory, as the daemon has: the three sensors share one open port.
    const serial = nodeSerialFactory();
    const ctx1 = testContext(serial);
    const ctx2 = testContext(serial);
    const ctx7 = testContext(serial);
    const common = { port: pair.a, baudRate: 19200 };
    const unit1 = run(createModbusRtu(modbus({ ...common, id: "meter-1", unitId: 1, interval: "500ms", registers: UNIT1_REGISTERS }), ctx1));
    const meter2 = createModbusRtu(
      modbus({ ...common, id: "meter-2", unitId: 2, interval: "250ms", unit: "count", registers: [{ name: "pulses", address: 0 }] }),
      ctx2,
    );
    const unit2 = run(meter2);
    // Absent: three registers, so a driver that did not give up after the first timeout would hold the bus 3 × 600 ms.
    const absentRegs = [0, 1, 2].map((a) => ({ name: `r${a}`, address: a }));
    const unit7 = run(createModbusRtu(modbus({ ...common, id: "meter-7", unitId: 7, interval: "250ms", timeout: "600ms", registers: absentRegs }), ctx7));

    await waitFor(() => unit1.readings.length >= 2 && unit2.readings.length >= 8 && ctx7.counters.errors >= 3, {
      timeout: 20_000,
      what: "readings from units 1 and 2 and three timeouts of unit 7",
    });

    for (const r of unit1.readings) {
      expect(r).toMatchObject({ sensor: "meter-1", type: "energy", quality: "good", values: UNIT1_VALUES });
      expect(r.units).toEqual({ f32be: "Cel", scaled: "Cel", in_f32le: "hPa" });
    }
    for (const r of unit2.readings) expect(r).toMatchObject({ sensor: "meter-2", value: 42, unit: "count", quality: "good" });
    expect(unit7.readings).toEqual([]);
    // An on-demand read goes through the same serialised bus.
    expect(await meter2.poll!()).toEqual([expect.objectContaining({ sensor: "meter-2", value: 42, unit: "count" })]);

    // Serialised requests: no unit ever saw a corrupted or mismatched answer.
    expect(ctx1.counters.rejected).toEqual({});
    expect(ctx2.counters.rejected).toEqual({});
    expect(ctx1.reports).toEqual([{ state: "ok" }]);
    expect(ctx2.reports).toEqual([{ state: "ok" }]);
    // The absent unit is one driver error, reported once, not a crash; each poll asked it once.
    expect(ctx7.reports).toHaveLength(1);
    expect(ctx7.reports[0]).toMatchObject({ state: "error" });
    expect(ctx7.reports[0]!.state === "error" && ctx7.reports[0]!.error.message).toMatch(/modbus unit 7 .* did not answer within 600ms/);
    expect(requests.get(7)).toBeLessThanOrEqual(ctx7.counters.errors + 1);

    // Unit 2 polls every 250 ms; waiting behind unit 7 may add at most its 600 ms timeout
    // (plus unit 1's exchanges and scheduling slack), never 3 × 600 ms: the bound sits just
    // below what waiting on all three of unit 7's registers would cost, with room for a loaded
    // machine.
    const ts = unit2.readings.map((r) => r.ts);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
    expect(Math.max(...gaps)).toBeLessThan(3 * 600);
  });

  it("skips a register answered with a Modbus exception or a bad CRC, counts both, and publishes the rest", async () => {
    const pair = await startPtyPair();
    const device = await openDevice(pair.b);
    const holding = new Image().u16(0, 7).u16(1, 8).u16(2, 9);
    startSlaves(device, { 3: { holding: holding.buf } }, (req) => {
      const address = req.readUInt16BE(2);
      if (address === 1) return withCrc([req[0]!, 0x83, 0x02]); // illegal data address
      if (address === 2) {
        const bad = withCrc([req[0]!, 0x03, 0x02, 0x00, 0x09]);
        bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
        return bad;
      }
      return undefined;
    });
    const ctx = testContext();
    const registers = [0, 1, 2].map((a) => ({ name: `r${a}`, address: a }));
    const r = run(createModbusRtu(modbus({ port: pair.a, id: "m3", unitId: 3, interval: "200ms", registers }), ctx));
    await waitFor(() => r.readings.length >= 2, { timeout: 15_000, what: "two polls" });
    expect(r.readings[0]).toMatchObject({ values: { r0: 7 } });
    expect(Object.keys(r.readings[0]!.values!)).toEqual(["r0"]);
    expect(ctx.counters.rejected.exception).toBeGreaterThanOrEqual(2);
    expect(ctx.counters.rejected.checksum).toBeGreaterThanOrEqual(2);
    expect(Object.keys(ctx.counters.rejected).sort()).toEqual(["checksum", "exception"]);
    // The unit answers, so the driver is healthy; bad answers are data problems, not errors.
    expect(ctx.reports).toEqual([{ state: "ok" }]);
  });
});
