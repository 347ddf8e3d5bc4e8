import type { Pms5003Sensor } from "./schema.js";
import type { Driver, DriverContext } from "../types.js";
import { RejectLog, serialDriver } from "./common.js";

/** Frame size, header and length field of a Plantower PMS5003 data frame (datasheet v2.5). */
export const PMS5003_FRAME_BYTES = 32;
const START_1 = 0x42;
const START_2 = 0x4d;
const FRAME_LENGTH = 28;

/**
 * Value names in data-word order 4–12 (1-based words after the length field): atmospheric PM
 * in ug/m3, then particle counts per 0.1 L of air (beyond 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm).
 */
export const PMS5003_VALUES = ["pm1_0", "pm2_5", "pm10", "n0_3", "n0_5", "n1_0", "n2_5", "n5_0", "n10"] as const;
export type Pms5003Values = Record<(typeof PMS5003_VALUES)[number], number>;

/** Units of {@link PMS5003_VALUES}. `count/dL`: particles per 0.1 litre, as the sensor counts them. */
export const PMS5003_UNITS: Record<(typeof PMS5003_VALUES)[number], string> = {
  pm1_0: "ug/m3",
  pm2_5: "ug/m3",
  pm10: "ug/m3",
  n0_3: "count/dL",
  n0_5: "count/dL",
  n1_0: "count/dL",
  n2_5: "count/dL",
  n5_0: "count/dL",
  n10: "count/dL",
};

/** One event from {@link Pms5003Parser.push}. */
export type Pms5003Event = { frame: Pms5003Values } | { rejected: "checksum" | "parse"; bytes: Buffer };

/** Builds a valid frame (for tests and simulators): 13 data words, checksum filled in. */
export function buildPms5003Frame(words: readonly number[]): Buffer {
  const frame = Buffer.alloc(PMS5003_FRAME_BYTES);
  frame[0] = START_1;
  frame[1] = START_2;
  frame.writeUInt16BE(FRAME_LENGTH, 2);
  for (let i = 0; i < 13; i++) frame.writeUInt16BE(words[i] ?? 0, 4 + 2 * i);
  frame.writeUInt16BE(pmsChecksum(frame), 30);
  return frame;
}

/** Sum of the first 30 bytes, modulo 2^16. */
export function pmsChecksum(frame: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 30; i++) sum += frame[i]!;
  return sum & 0xffff;
}

/**
 * Incremental PMS5003 frame parser. Accepts bytes split anywhere; skips garbage until the next
 * `0x42 0x4D` with length 28; a frame whose checksum fails is rejected (`checksum`) and the
 * search resumes one byte after its start, so a real frame hidden inside is not lost. A run of
 * skipped garbage bytes is reported once as `parse`, when the next frame starts (or on
 * {@link flush}). Buffers at most one frame.
 */
export class Pms5003Parser {
  #buf: Buffer = Buffer.alloc(0);
  #junk: Buffer[] = [];
  /** Bytes of a checksum-failed frame still to skip without calling them junk (counted once). */
  #quiet = 0;

  push(chunk: Buffer): Pms5003Event[] {
    const events: Pms5003Event[] = [];
    let buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let i = 0;
    while (buf.length - i >= 2) {
      if (buf[i] !== START_1 || buf[i + 1] !== START_2) {
        this.#junkByte(buf, i);
        i++;
        continue;
      }
      if (buf.length - i < 4) break;
      if (buf.readUInt16BE(i + 2) !== FRAME_LENGTH) {
        this.#junkByte(buf, i);
        i++;
        continue;
      }
      if (buf.length - i < PMS5003_FRAME_BYTES) break;
      const frame = buf.subarray(i, i + PMS5003_FRAME_BYTES);
      this.#flushJunk(events);
      if (pmsChecksum(frame) !== frame.readUInt16BE(30)) {
        events.push({ rejected: "checksum", bytes: Buffer.from(frame) });
        this.#quiet = PMS5003_FRAME_BYTES - 1;
        i++;
        continue;
      }
      const values = {} as Pms5003Values;
      PMS5003_VALUES.forEach((name, k) => (values[name] = frame.readUInt16BE(4 + 2 * (3 + k))));
      events.push({ frame: values });
      this.#quiet = 0;
      i += PMS5003_FRAME_BYTES;
    }
    // A lone 0x42 at the end may start a frame; anything else left over is junk already counted.
    buf = buf.subarray(i);
    this.#buf = Buffer.from(buf);
    if (this.#buf.length === 1 && this.#buf[0] !== START_1) {
      this.#junkByte(this.#buf, 0);
      this.#buf = Buffer.alloc(0);
    }
    return events;
  }

  /** Pending junk is reported when the next frame starts; this reports it now (end of input). */
  flush(): Pms5003Event[] {
    const events: Pms5003Event[] = [];
    this.#flushJunk(events);
    return events;
  }

  /** Forgets a partial frame (the port was lost). */
  reset(): void {
    this.#buf = Buffer.alloc(0);
    this.#junk = [];
    this.#quiet = 0;
  }

  #junkByte(buf: Buffer, i: number): void {
    if (this.#quiet > 0) {
      this.#quiet--;
      return;
    }
    // Keep a sample of the run (its first 63 bytes and the last) for the log.
    const byte = Buffer.from(buf.subarray(i, i + 1));
    if (this.#junk.length < 64) this.#junk.push(byte);
    else this.#junk[63] = byte;
  }

  #flushJunk(events: Pms5003Event[]): void {
    if (this.#junk.length === 0) return;
    events.push({ rejected: "parse", bytes: Buffer.concat(this.#junk) });
    this.#junk = [];
  }
}

/**
 * `pms5003`: one reading per valid frame, as the sensor sends them (about every 1–2.3 s in its
 * default active mode; `interval` is not used — thin with `deadband`/`heartbeat`). `values` are
 * {@link PMS5003_VALUES} with {@link PMS5003_UNITS}.
 */
export function createPms5003(config: Pms5003Sensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  const rejects = new RejectLog(ctx, config.id);
  return serialDriver(config, ctx, {}, (emit) => {
    const parser = new Pms5003Parser();
    return {
      onData(chunk) {
        for (const ev of parser.push(chunk)) {
          if ("rejected" in ev) {
            if (ev.rejected === "checksum") ctx.counters.read++;
            rejects.reject(ev.rejected, ev.bytes);
            continue;
          }
          ctx.counters.read++;
          emit({ sensor: config.id, type: config.type, ts: now(), values: { ...ev.frame }, units: { ...PMS5003_UNITS }, quality: "good" });
        }
      },
      onLost() {
        for (const ev of parser.flush()) if ("rejected" in ev) rejects.reject(ev.rejected, ev.bytes);
        parser.reset();
      },
    };
  });
}
