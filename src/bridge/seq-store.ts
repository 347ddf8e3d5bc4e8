import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * Per-sensor sequence numbers that are never reused (DESIGN A2, issue 18), so a `Nats-Msg-Id`
 * (`<device>.<sensor>.<seq>`) names one reading only.
 *
 * Seqs are handed out from **reserved blocks**: before any seq of a block is used, the block's
 * end is written to `<state>/seq.json` (fsync + rename + fsync of the directory). A process that
 * dies at any point therefore restarts above every seq it may have used, with no lookup in the
 * stream. The price is a skip: after an unclean stop a sensor's seqs jump over the unused rest
 * of its block (logged at start, with the ranges). A clean `close()` writes the exact next seq,
 * so a normal restart skips nothing.
 *
 * Blocks are sized per sensor to about a minute of its readings (16 … 65,536), and one write
 * tops up every sensor that used part of its block, so the file is written about once every
 * 30 s however many sensors there are — not on a timer (an SD card wears out).
 *
 * A sensor the file does not know (new, or a state dir lost while the leaf kept its stream), or
 * one from an old-format file, needs `floor()` with the stream's last stored seq before its
 * first seq: a floor only, the blocks carry the guarantee.
 */
const FILE_VERSION = 2;
const BLOCK_SECONDS = 60;
const MIN_BLOCK = 16;
const MAX_BLOCK = 65_536;

interface SensorSeq {
  /** Last seq handed out (or skipped for a dropped reading). */
  last: number;
  /** End of the block whose reservation is on disk: seqs up to here may be handed out. */
  durable: number;
  /** End of the block reserved (on disk, or being written): `durable` once the write is done. */
  reservedEnd: number;
  block: number;
  /** `last` and the time at the previous reservation, to size the next block. */
  lastAtReserve: number;
  reservedAt: number;
  /** True until the stream's last stored seq was taken into account (see `floor`). */
  needsFloor: boolean;
  /** Asked for a seq in this process. */
  active?: boolean;
}

/** The file: the first seq each sensor may use next, and (to report skips) what was issued. */
interface SeqFileV2 {
  v: 2;
  /** True when written by `close()`: `next` is exact, nothing was skipped. */
  clean: boolean;
  next: Record<string, number>;
  issued: Record<string, number>;
}

export class SeqStore {
  private readonly file: string;
  private readonly sensors = new Map<string, SensorSeq>();
  private writing?: Promise<void>;
  private again = false;
  private closed = false;
  private readonly logger: Logger;
  private readonly now: () => number;
  /** Reservation writes done (for tests and status). */
  writes = 0;
  /** True while the last reservation write failed. */
  failing = false;
  /** Per sensor, the seqs skipped at start after an unclean stop: `[from, to]`, inclusive. */
  readonly skipped = new Map<string, [number, number]>();

  private constructor(file: string, logger: Logger, now: () => number) {
    this.file = file;
    this.logger = logger;
    this.now = now;
  }

  /**
   * Opens (or creates) the store in `stateDir`. Throws EGW_STATE when the directory or the file
   * cannot be read. A file that is not valid JSON is logged and ignored (every sensor then takes
   * its floor from the stream).
   */
  static async open(stateDir: string, logger: Logger, opts: { now?: () => number } = {}): Promise<SeqStore> {
    const store = new SeqStore(join(stateDir, "seq.json"), logger, opts.now ?? (() => performance.now()));
    let data: unknown;
    try {
      data = JSON.parse(await readFile(store.file, "utf8")) as unknown;
      if (!data || typeof data !== "object" || Array.isArray(data)) throw new SyntaxError("not a JSON object");
    } catch (cause) {
      data = undefined;
      const code = (cause as NodeJS.ErrnoException).code;
      if (cause instanceof SyntaxError) {
        logger.warn({ file: store.file, err: cause.message }, "seq state file is not valid JSON; taking each sensor's floor from the leaf stream");
      } else if (code !== "ENOENT") {
        throw new GatewayError("EGW_STATE", `cannot read ${store.file}: check that the state directory is readable by the daemon`, { cause });
      }
    }
    if (data) store.load(data as Record<string, unknown>);
    await mkdir(dirname(store.file), { recursive: true }).catch((cause: unknown) => {
      throw new GatewayError("EGW_STATE", `cannot create state directory ${dirname(store.file)}: set \`state:\` to a writable directory`, { cause });
    });
    return store;
  }

  private load(data: Record<string, unknown>): void {
    const t = this.now();
    if (data.v === FILE_VERSION && data.next && typeof data.next === "object") {
      const f = data as unknown as SeqFileV2;
      for (const [sensor, next] of Object.entries(f.next)) {
        if (!Number.isInteger(next) || next < 1) continue;
        const issued = f.issued?.[sensor];
        // Everything below `next` may have been used: start there, with no lookup.
        this.sensors.set(sensor, { last: next - 1, durable: next - 1, reservedEnd: next - 1, block: MIN_BLOCK, lastAtReserve: next - 1, reservedAt: t, needsFloor: false });
        if (!f.clean && Number.isInteger(issued) && (issued as number) < next - 1) this.skipped.set(sensor, [(issued as number) + 1, next - 1]);
      }
      if (this.skipped.size > 0) {
        const ranges = Object.fromEntries([...this.skipped].slice(0, 20));
        this.logger.warn(
          { file: this.file, sensors: this.skipped.size, ranges },
          "unclean stop: seqs reserved before it are skipped (a consumer sees these gaps: the unused rest of the blocks, and any readings the stopped process still held in memory)",
        );
      }
      return;
    }
    // The old format (`{sensor: lastSeq}`, written every 5 s): it may lag, so it is a floor only.
    for (const [sensor, last] of Object.entries(data)) {
      if (typeof last !== "number" || !Number.isInteger(last)) continue;
      this.sensors.set(sensor, { last, durable: last, reservedEnd: last, block: MIN_BLOCK, lastAtReserve: last, reservedAt: t, needsFloor: true });
    }
  }

  private entry(sensor: string): SensorSeq {
    let s = this.sensors.get(sensor);
    if (!s) {
      s = { last: 0, durable: 0, reservedEnd: 0, block: MIN_BLOCK, lastAtReserve: 0, reservedAt: this.now(), needsFloor: true };
      this.sensors.set(sensor, s);
    }
    return s;
  }

  /** True when the sensor's first seq must wait for `floor()` (unknown to the file, or old format). */
  needsFloor(sensor: string): boolean {
    return this.entry(sensor).needsFloor;
  }

  /** Raises the sensor's last seq to at least `storedSeq` (the stream's last stored one), once. */
  floor(sensor: string, storedSeq: number | undefined): void {
    const s = this.entry(sensor);
    if (storedSeq !== undefined && storedSeq > s.last) s.last = storedSeq;
    s.needsFloor = false;
  }

  /**
   * The next seq for `sensor`, or `undefined` while its block is not yet on disk (then await
   * `reserved()` and ask again). Starts the next block's write when half of this one is used.
   */
  next(sensor: string): number | undefined {
    const s = this.entry(sensor);
    s.active = true;
    const seq = s.last + 1;
    if (s.reservedEnd - s.last < s.block >> 1) this.reserve();
    if (seq > s.durable) return undefined;
    s.last = seq;
    return seq;
  }

  /**
   * Asks for the sensor's next block without taking a seq (a reading of it waits): the write
   * started (or queued) now covers it together with every other sensor that asked.
   */
  want(sensor: string): void {
    const s = this.entry(sensor);
    s.active = true;
    if (s.reservedEnd - s.last < s.block >> 1) this.reserve();
  }

  /** True when `next(sensor)` would hand out a seq now (its floor is known and its block is on disk). */
  hasRoom(sensor: string): boolean {
    const s = this.sensors.get(sensor);
    return s !== undefined && !s.needsFloor && s.durable > s.last;
  }

  /**
   * Uses up the sensor's next seq without a durable block, for a reading that is dropped: the
   * consumer sees the gap. Safe: the seq is never sent, so reusing it after a crash is harmless.
   */
  skip(sensor: string): number {
    const s = this.entry(sensor);
    s.active = true;
    return ++s.last;
  }

  /** The last seq handed out (or skipped) for `sensor`, or 0. */
  current(sensor: string): number {
    return this.sensors.get(sensor)?.last ?? 0;
  }

  /** Resolves once the reservation being written (if any) is on disk. Never rejects. */
  async reserved(): Promise<void> {
    // A write that ends may start the next one at once (sensors that asked meanwhile).
    while (this.writing) await this.writing;
  }

  /** Starts (or queues) one write that tops up every sensor that used part of its block. */
  private reserve(): void {
    if (this.closed) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    const t = this.now();
    const grants: SensorSeq[] = [];
    for (const s of this.sensors.values()) {
      // Sensors of the file that this process has not used (removed, or not read yet) keep theirs.
      if (!s.active || s.reservedEnd - s.last >= s.block) continue;
      const used = s.last - s.lastAtReserve;
      // About a minute of this sensor's readings per block, growing at most ×2 per write (a
      // backlog sent at once after a reconnect is not the sensor's rate), shrinking at once.
      const secs = Math.max(1, (t - s.reservedAt) / 1000);
      const want = 2 ** Math.ceil(Math.log2(Math.max(1, (used / secs) * BLOCK_SECONDS)));
      s.block = Math.min(MAX_BLOCK, s.block * 2, Math.max(MIN_BLOCK, want));
      s.lastAtReserve = s.last;
      s.reservedAt = t;
      s.reservedEnd = s.last + s.block;
      grants.push(s);
    }
    const body = this.serialise((s) => s.reservedEnd, false);
    this.writing = writeFileAtomic(this.file, body)
      .then(
        () => {
          this.writes++;
          this.failing = false;
          for (const s of grants) s.durable = Math.max(s.durable, s.reservedEnd);
        },
        (err: unknown) => {
          // Nothing of these blocks is used; the next `next()` asks again.
          for (const s of grants) s.reservedEnd = s.durable;
          this.failing = true;
          this.logger.error({ err, file: this.file }, "cannot reserve sequence numbers: readings wait until the state file can be written");
        },
      )
      .finally(() => {
        this.writing = undefined;
        if (this.again) {
          this.again = false;
          this.reserve();
        }
      });
  }

  private serialise(end: (s: SensorSeq) => number, clean: boolean): string {
    const f: SeqFileV2 = { v: FILE_VERSION, clean, next: {}, issued: {} };
    for (const [sensor, s] of this.sensors) {
      if (s.last === 0 && end(s) === 0) continue;
      f.next[sensor] = Math.max(end(s), s.last) + 1;
      f.issued[sensor] = s.last;
    }
    return JSON.stringify(f);
  }

  /**
   * Writes the exact state (`next` = last + 1 for every sensor) and stops reserving: call it
   * once nothing hands out seqs any more (after the publisher closed). Safe to call twice;
   * resolves, never rejects (a failed write is logged; the reserved blocks stay valid).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writing;
    try {
      await writeFileAtomic(this.file, this.serialise((s) => s.last, true));
      this.writes++;
    } catch (err) {
      this.logger.error({ err, file: this.file }, "cannot write the sequence numbers at stop; the next start skips the reserved blocks");
    }
  }

  /** Compatibility with 0.1: the file is now written on reservation and at close. Resolves, never rejects. */
  persist(): Promise<void> {
    return this.reserved();
  }
}
