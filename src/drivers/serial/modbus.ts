import { EventEmitter } from "node:events";
import type { ModbusRtuSensor } from "./schema.js";
import { GatewayError, errorMessage } from "../../errors.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { ticker } from "../util.js";
import { RejectLog, serialDriver } from "./common.js";
import type { PortLease } from "./port.js";

type Register = ModbusRtuSensor["registers"][number];

/** Registers a data type occupies. */
export function registerWords(dataType: Register["dataType"]): 1 | 2 {
  return dataType === "uint16" || dataType === "int16" ? 1 : 2;
}

/**
 * Decodes register bytes as read from the wire (each word big-endian, as Modbus sends them).
 * `wordOrder` `be`: the first register holds the high word; `le`: the low word. float32 is
 * rounded to 7 significant digits (its precision), then multiplied by `scale`, and the product
 * rounded to 12 significant digits so that `215 × 0.1` is 21.5.
 */
export function decodeRegister(bytes: Buffer, reg: Pick<Register, "dataType" | "wordOrder" | "scale">): number {
  let b = bytes;
  if (registerWords(reg.dataType) === 2 && reg.wordOrder === "le") b = Buffer.concat([bytes.subarray(2, 4), bytes.subarray(0, 2)]);
  let raw: number;
  switch (reg.dataType) {
    case "uint16":
      raw = b.readUInt16BE(0);
      break;
    case "int16":
      raw = b.readInt16BE(0);
      break;
    case "uint32":
      raw = b.readUInt32BE(0);
      break;
    case "int32":
      raw = b.readInt32BE(0);
      break;
    case "float32":
      raw = Number(b.readFloatBE(0).toPrecision(7));
      break;
  }
  return reg.scale === 1 ? raw : Number((raw * reg.scale).toPrecision(12));
}

/**
 * A modbus-serial "port" on top of a shared {@link PortLease}: it assembles the bytes of the
 * one outstanding response (the lease's lock guarantees there is only one) and hands the whole
 * frame to modbus-serial, which checks CRC, address and function code and decodes it. Bytes
 * that arrive while no request is outstanding (late answers, other traffic) are ignored.
 */
class LeasePort extends EventEmitter {
  #buf = Buffer.alloc(0);
  #unit = -1;
  #code = -1;
  #expect = 0;
  _transactionIdRead = 1;
  _transactionIdWrite = 1;

  constructor(private readonly lease: PortLease) {
    super();
  }

  get isOpen(): boolean {
    return this.lease.isOpen;
  }

  open(callback?: (err: Error | null) => void): void {
    process.nextTick(() => callback?.(null));
  }

  close(callback?: () => void): void {
    process.nextTick(() => callback?.());
  }

  write(data: Buffer): void {
    this.#unit = data[0] ?? -1;
    this.#code = data[1] ?? -1;
    // Only FC3/FC4 are sent: 1 address + 1 code + 1 count + 2n data + 2 CRC.
    this.#expect = 5 + 2 * data.readUInt16BE(4);
    this.#buf = Buffer.alloc(0);
    // A failed write leaves the transaction to time out; the port manager reports the port.
    this.lease.write(data).catch(() => undefined);
  }

  /** Called with every chunk from the port. */
  feed(chunk: Buffer): void {
    if (this.#expect === 0) return;
    this.#buf = Buffer.concat([this.#buf, chunk]).subarray(-256);
    for (let i = 0; i + 5 <= this.#buf.length; i++) {
      if (this.#buf[i] !== this.#unit) continue;
      const code = this.#buf[i + 1];
      const length = code === this.#code ? this.#expect : code === (this.#code | 0x80) ? 5 : 0;
      if (length === 0) continue;
      if (i + length > this.#buf.length) return;
      const frame = this.#buf.subarray(i, i + length);
      this.#expect = 0;
      this.#buf = Buffer.alloc(0);
      this.emit("data", frame);
      return;
    }
  }

  /** No response is awaited any more (timeout): late bytes must not complete it. */
  idle(): void {
    this.#expect = 0;
    this.#buf = Buffer.alloc(0);
  }
}

/** What modbus-serial rejects with: `errno` `ETIMEDOUT` on timeout, `modbusCode` for exceptions. */
interface ModbusFailure extends Error {
  errno?: string | number;
  modbusCode?: number;
}

/**
 * `modbus-rtu`: every `interval`, reads each register of unit `unitId` (FC3 holding, FC4 input)
 * and publishes one reading: `value`/`unit` with a single register, else `values`/`units` by
 * register name. Sensors on one `port` share it and their requests are serialised. A unit that
 * does not answer within `timeout` ends that poll (so it costs the bus one `timeout` per poll)
 * and is reported as a driver error; a Modbus exception skips that register (`exception`), a
 * bad CRC is counted as `checksum`. `poll()` reads the unit once more, now, while the driver
 * runs (undefined when it is not running or nothing answered).
 */
export function createModbusRtu(config: ModbusRtuSensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  const rejects = new RejectLog(ctx, config.id);
  const { parity, dataBits, stopBits } = config;
  let activePoll: (() => Promise<Reading | undefined>) | undefined;
  const driver = serialDriver(config, ctx, { parity, dataBits, stopBits }, (emit, health, logger) => {
    let port: LeasePort | undefined;
    return {
      healthFromData: true,
      onData(chunk) {
        port?.feed(chunk);
      },
      onLost() {
        port?.idle();
      },
      async run(lease, signal) {
        port = new LeasePort(lease);
        const leasePort = port;
        // Loaded on first use: modbus-serial pulls in serialport's native binding at import time.
        // It is CommonJS: `module.exports` is the client class and `.default` points back to it.
        const { default: modbusSerial } = await import("modbus-serial");
        const client = new modbusSerial.default(leasePort);
        await new Promise<void>((resolve) => client.open(() => resolve()));
        client.on("error", (err: unknown) => logger.debug({ err: errorMessage(err) }, "modbus client error"));

        const read = (reg: Register): Promise<Buffer> =>
          lease.exclusive(
            () =>
              new Promise<Buffer>((resolve, reject) => {
                if (!lease.isOpen) return reject(new GatewayError("EGW_SERIAL_OPEN", `serial port ${config.port} is not open`));
                client.setTimeout(config.timeout);
                const done = (err: NodeJS.ErrnoException | null, res?: { buffer: Buffer }) => {
                  leasePort.idle();
                  if (err || !res) reject(err ?? new Error("empty Modbus response"));
                  else resolve(res.buffer);
                };
                const words = registerWords(reg.dataType);
                if (reg.table === "input") client.writeFC4(config.unitId, reg.address, words, done);
                else client.writeFC3(config.unitId, reg.address, words, done);
              }),
          );

        const pollOnce = async (): Promise<Reading | undefined> => {
          if (!lease.isOpen) return undefined;
          const values: Record<string, number> = {};
          const units: Record<string, string> = {};
          let answered = false;
          let ts = 0;
          for (const reg of config.registers) {
            if (signal.aborted) return undefined;
            try {
              const bytes = await read(reg);
              ctx.counters.read++;
              answered = true;
              ts ||= now();
              values[reg.name] = decodeRegister(bytes, reg);
              const unit = reg.unit ?? config.unit;
              if (unit) units[reg.name] = unit;
            } catch (e) {
              const err = e as ModbusFailure;
              if (err.errno === "ETIMEDOUT") {
                health.error(
                  new GatewayError("EGW_DRIVER", `modbus unit ${config.unitId} on ${config.port} did not answer within ${config.timeout}ms`, { cause: err }),
                );
                break;
              }
              if (typeof err.modbusCode === "number") {
                ctx.counters.read++;
                answered = true;
                rejects.reject("exception", `${reg.name}@${reg.address}: ${err.message}`);
                continue;
              }
              if (/CRC/.test(errorMessage(err))) {
                ctx.counters.read++;
                rejects.reject("checksum", `${reg.name}@${reg.address}`);
                continue;
              }
              if (err instanceof GatewayError) break; // port gone: already reported by the port manager
              rejects.reject("parse", `${reg.name}@${reg.address}: ${errorMessage(err)}`);
            }
          }
          if (answered) health.ok();
          const names = Object.keys(values);
          if (names.length === 0) return undefined;
          const reading: Reading = { sensor: config.id, type: config.type, ts, quality: "good" };
          if (config.registers.length === 1) {
            reading.value = values[names[0]!]!;
            const unit = units[names[0]!];
            if (unit) reading.unit = unit;
          } else {
            reading.values = values;
            if (Object.keys(units).length) reading.units = units;
          }
          return reading;
        };

        activePoll = pollOnce;
        try {
          for await (const _ of ticker(config.interval, signal)) {
            const reading = await pollOnce();
            if (reading) emit(reading);
          }
        } finally {
          if (activePoll === pollOnce) activePoll = undefined;
        }
      },
    };
  });
  // The control service's `read`: one extra poll now, queued on the bus like any other.
  driver.poll = async () => {
    const reading = await activePoll?.();
    return reading ? [reading] : undefined;
  };
  return driver;
}
