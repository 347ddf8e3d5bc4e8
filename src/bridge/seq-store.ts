import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * Per-sensor sequence numbers that survive restarts (DESIGN A2), so a `Nats-Msg-Id`
 * (`<device>.<sensor>.<seq>`) is never reused.
 *
 * Two sources of truth are combined: the last reading of each sensor stored in the leaf
 * stream (any subject: `sensors.*.*.<device>.<sensor>`), looked up once per sensor before its first
 * publish (`recover`), and the file `<state>/seq.json`, which covers readings the stream no
 * longer holds (aged out, purged). The file is written every 5 s (an SD card wears out) and on
 * close, with fsync + rename; what a crash loses of it the stream lookup makes up for.
 * The next seq is one above the larger of the two.
 */
const PERSIST_EVERY_MS = 5000;

export class SeqStore {
  private readonly file: string;
  private readonly last = new Map<string, number>();
  private readonly recovered = new Set<string>();
  private dirty = false;
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private readonly logger: Logger;

  private constructor(file: string, logger: Logger) {
    this.file = file;
    this.logger = logger;
  }

  /** Opens (or creates) the store in `stateDir`. Throws EGW_STATE when the file is unreadable. */
  static async open(stateDir: string, logger: Logger): Promise<SeqStore> {
    const store = new SeqStore(join(stateDir, "seq.json"), logger);
    try {
      const data = JSON.parse(await readFile(store.file, "utf8")) as unknown;
      if (!data || typeof data !== "object") throw new SyntaxError("not a JSON object");
      for (const [k, v] of Object.entries(data)) if (typeof v === "number" && Number.isInteger(v)) store.last.set(k, v);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        if (cause instanceof SyntaxError) {
          // Not JSON (a hand edit, a broken SD card): the stream lookup still protects
          // against reuse of what the stream holds, so carry on and say so.
          logger.warn({ file: store.file, err: cause.message }, "seq state file is not valid JSON; recovering sequence numbers from the leaf stream only");
        } else {
          throw new GatewayError("EGW_STATE", `cannot read ${store.file}: check that the state directory is readable by the daemon`, { cause });
        }
      }
    }
    await mkdir(dirname(store.file), { recursive: true }).catch((cause) => {
      throw new GatewayError("EGW_STATE", `cannot create state directory ${dirname(store.file)}: set \`state:\` to a writable directory`, { cause });
    });
    store.timer = setInterval(() => void store.persist(), PERSIST_EVERY_MS);
    store.timer.unref();
    return store;
  }

  /** True once `recover` ran for this sensor in this process. */
  isRecovered(sensor: string): boolean {
    return this.recovered.has(sensor);
  }

  /** Raises the sensor's last seq to at least `storedSeq` (the stream's last stored one). */
  recover(sensor: string, storedSeq: number | undefined): void {
    if (storedSeq !== undefined && storedSeq > (this.last.get(sensor) ?? 0)) {
      this.last.set(sensor, storedSeq);
      this.dirty = true;
    }
    this.recovered.add(sensor);
  }

  /** The next seq for `sensor` (1, 2, 3, …). */
  next(sensor: string): number {
    const seq = (this.last.get(sensor) ?? 0) + 1;
    this.last.set(sensor, seq);
    this.dirty = true;
    return seq;
  }

  /** The last seq handed out for `sensor`, or 0. */
  current(sensor: string): number {
    return this.last.get(sensor) ?? 0;
  }

  /** Writes the file atomically (temp + rename) if anything changed. Resolves, never rejects. */
  persist(): Promise<void> {
    if (!this.dirty) return this.writing;
    this.dirty = false;
    const body = JSON.stringify(Object.fromEntries(this.last));
    const tmp = `${this.file}.tmp`;
    this.writing = this.writing
      .then(async () => {
        // fsync before the rename: after a power cut the file is the old or the new one,
        // never empty.
        const fh = await open(tmp, "w");
        try {
          await fh.writeFile(body);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.file);
      })
      .catch((err: unknown) => {
        this.dirty = true;
        this.logger.error({ err, file: this.file }, "cannot persist sequence numbers");
      });
    return this.writing;
  }

  /** Stops the timer and writes the file a last time. Safe to call twice. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.persist();
  }
}
