import type { Logger } from "pino";
import { errorMessage } from "../../errors.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { countRejected, monotonicNow } from "../util.js";
import { nodeSerialFactory } from "./node-serial.js";
import { PortManager, type PortLease } from "./port.js";
import type { SerialOpenOptions, SerialPortFactory } from "./types.js";

/** Why input was dropped; the keys of `counters.rejected` the serial drivers use. */
export type RejectReason = "checksum" | "parse" | "too-long" | "no-fix" | "exception";

let defaultFactory: SerialPortFactory | undefined;
const managers = new WeakMap<SerialPortFactory, PortManager>();

/**
 * The port manager shared by every driver that opens ports through `factory` (sensors naming
 * the same path share one open port). Without a factory in the context, the production
 * `serialport` factory is used.
 */
export function portManagerFor(ctx: DriverContext): PortManager {
  const factory = ctx.hardware.serial ?? (defaultFactory ??= nodeSerialFactory());
  let manager = managers.get(factory);
  if (!manager) {
    manager = new PortManager(factory, ctx.logger);
    managers.set(factory, manager);
  }
  return manager;
}

/**
 * Counts rejected input in `counters.rejected[reason]` and logs it at most once per `everyMs`
 * per sensor (with how many were dropped since the last line), so a noisy line cannot flood
 * the journal.
 */
export class RejectLog {
  #lastLog = -Infinity;
  #suppressed = 0;
  constructor(
    private readonly ctx: DriverContext,
    private readonly sensor: string,
    private readonly everyMs = 10_000,
  ) {}

  reject(reason: RejectReason, sample?: string | Buffer): void {
    countRejected(this.ctx.counters, reason);
    const now = monotonicNow();
    if (now - this.#lastLog < this.everyMs) {
      this.#suppressed++;
      return;
    }
    const shown = typeof sample === "string" ? sample.slice(0, 120) : sample?.subarray(0, 48).toString("hex");
    this.ctx.logger.warn(
      { sensor: this.sensor, reason, sample: shown, suppressed: this.#suppressed, rejected: { ...this.ctx.counters.rejected } },
      "rejected serial input",
    );
    this.#lastLog = now;
    this.#suppressed = 0;
  }
}

/** Reports health on transitions only (first report, ok → error, error → ok). */
export class HealthReporter {
  #last: "ok" | "error" | undefined;
  constructor(private readonly ctx: DriverContext) {}
  ok(): void {
    if (this.#last === "ok") return;
    this.#last = "ok";
    this.ctx.report({ state: "ok" });
  }
  error(error: Error, retryInMs?: number): void {
    this.ctx.counters.errors++;
    if (this.#last === "error") return;
    this.#last = "error";
    this.ctx.report(retryInMs === undefined ? { state: "error", error } : { state: "error", error, retryInMs });
  }
}

/** Async queue of readings between the port callbacks and the consumer; holds at most `limit`, dropping the oldest. */
export class ReadingQueue implements AsyncIterable<Reading> {
  readonly #items: Reading[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  constructor(private readonly limit = 1000) {}

  push(r: Reading): void {
    if (this.#ended) return;
    this.#items.push(r);
    if (this.#items.length > this.limit) this.#items.shift();
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Reading> {
    for (;;) {
      const next = this.#items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

/** What a serial driver does with its port while it runs. */
export interface SerialSession {
  /** Report `ok` only from the session's own results (a Modbus unit answering), not on port open. */
  healthFromData?: boolean;
  /** Bytes from the port. */
  onData?(chunk: Buffer): void;
  /** The port (re)opened. */
  onOpen?(): void;
  /** The port failed; state tied to the old connection (partial frames, fixes) is stale. */
  onLost?(): void;
  /** Background work (polling, interval emission) until `signal` aborts; must not reject. */
  run?(lease: PortLease, signal: AbortSignal): Promise<void>;
}

/** The parts of a serial sensor's config every serial driver has. */
export interface SerialSensorConfig {
  id: string;
  port: string;
  baudRate: number;
}

/**
 * Builds a {@link Driver} around a serial port: acquires the (shared) port on `start`, feeds the
 * session, reports port health (error on failure with the retry delay, ok once reopened),
 * counts reopen attempts, and releases the port when the iteration ends.
 */
export function serialDriver(
  config: SerialSensorConfig,
  ctx: DriverContext,
  openOptions: Omit<SerialOpenOptions, "path" | "baudRate">,
  session: (emit: (r: Reading) => void, health: HealthReporter, logger: Logger) => SerialSession,
): Driver {
  let closed = new AbortController();
  const logger = ctx.logger.child({ sensor: config.id, port: config.port });
  const close = async () => {
    closed.abort();
  };
  return {
    async *start(signal: AbortSignal) {
      if (closed.signal.aborted) closed = new AbortController();
      const ended = new AbortController();
      const stop = AbortSignal.any([signal, closed.signal, ended.signal]);
      const queue = new ReadingQueue();
      const health = new HealthReporter(ctx);
      const s = session((r) => queue.push(r), health, logger);
      const lease = portManagerFor(ctx).acquire(
        { path: config.port, baudRate: config.baudRate, ...openOptions },
        {
          sensor: config.id,
          onData: (chunk) => s.onData?.(chunk),
          onOpen: () => {
            if (!s.healthFromData) health.ok();
            s.onOpen?.();
          },
          onError: (error, retryInMs) => {
            health.error(error, retryInMs);
            s.onLost?.();
          },
          onReopenAttempt: () => {
            ctx.counters.reopens++;
          },
        },
      );
      const onAbort = () => queue.end();
      stop.addEventListener("abort", onAbort, { once: true });
      if (stop.aborted) queue.end();
      const background = s.run?.(lease, stop).catch((err: unknown) => {
        logger.error({ err: errorMessage(err) }, "serial driver task failed");
      });
      try {
        yield* queue;
      } finally {
        stop.removeEventListener("abort", onAbort);
        queue.end();
        // Ends the background task also when the consumer stopped iterating on its own.
        ended.abort();
        await background;
        await lease.release();
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
