import type { Logger } from "pino";
import { GatewayError, errorMessage } from "../../errors.js";
import { backoff, delay } from "../util.js";
import type { SerialConnection, SerialOpenOptions, SerialPortFactory } from "./types.js";

/** One sensor using a shared port. Callbacks never throw into the port (exceptions are logged). */
export interface PortUser {
  /** Sensor id, for logs. */
  readonly sensor: string;
  /** Bytes received; every user of the port sees every chunk. */
  onData(chunk: Buffer): void;
  /** The port is open (first open, or reopened after a failure). */
  onOpen(): void;
  /** Opening failed or the open port failed/disappeared; a reopen follows in `retryInMs`. */
  onError(error: Error, retryInMs: number): void;
  /** A reopen attempt after a failure is starting (counts `reopens`). */
  onReopenAttempt(): void;
}

/** A user's handle on a shared port. */
export interface PortLease {
  /** Whether the port is open right now. */
  readonly isOpen: boolean;
  /** Writes to the port; rejects with EGW_SERIAL_OPEN when it is not open. */
  write(data: Buffer): Promise<void>;
  /**
   * Runs `fn` while holding the port's request lock, so request/response exchanges of several
   * sensors on one bus (Modbus units) never overlap. Locks are granted in call order.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Stops using the port; the last release closes it. Safe to call twice; never rejects. */
  release(): Promise<void>;
}

/** How long a port must stay open before a later failure starts the backoff from scratch. */
const STABLE_MS = 10_000;

/**
 * Opens serial ports by path on behalf of several sensors: one open device per path, shared
 * (reference counted), reopened with exponential backoff whenever opening fails or the device
 * disappears, until the last user releases it.
 */
export class PortManager {
  readonly #factory: SerialPortFactory;
  readonly #logger: Logger;
  readonly #backoff: (attempt: number) => number;
  readonly #ports = new Map<string, SharedPort>();
  /** Ports still closing, so that a quick re-acquire does not race the old file descriptor. */
  readonly #closing = new Map<string, Promise<void>>();

  constructor(factory: SerialPortFactory, logger: Logger, opts: { backoff?: (attempt: number) => number } = {}) {
    this.#factory = factory;
    this.#logger = logger;
    this.#backoff = opts.backoff ?? ((attempt) => backoff(attempt, 500, 30_000));
  }

  /**
   * Starts using the port at `options.path`, opening it if this is the first user. Never throws:
   * open failures reach `user.onError`. A later user whose line settings differ from the
   * port's is logged and gets the port's settings (the config schema rejects such documents).
   */
  acquire(options: SerialOpenOptions, user: PortUser): PortLease {
    let port = this.#ports.get(options.path);
    if (!port) {
      const after = this.#closing.get(options.path) ?? Promise.resolve();
      port = new SharedPort(this.#factory, options, this.#logger, this.#backoff, after, () => {
        this.#ports.delete(options.path);
      });
      this.#ports.set(options.path, port);
    } else if (!sameSettings(port.options, options)) {
      this.#logger.warn(
        { sensor: user.sensor, port: options.path, using: port.options, wanted: options },
        "sensors on one serial port must use the same line settings; using the port's current settings",
      );
    }
    const shared = port;
    shared.add(user);
    let released = false;
    return {
      get isOpen() {
        return shared.isOpen;
      },
      write: (data) => shared.write(data),
      exclusive: (fn) => shared.exclusive(fn),
      release: async () => {
        if (released) return;
        released = true;
        const closing = shared.remove(user);
        if (closing) {
          this.#closing.set(options.path, closing);
          await closing;
          if (this.#closing.get(options.path) === closing) this.#closing.delete(options.path);
        }
      },
    };
  }

  /** Paths with an open or reopening port, for status and tests. */
  get paths(): string[] {
    return [...this.#ports.keys()];
  }
}

function sameSettings(a: SerialOpenOptions, b: SerialOpenOptions): boolean {
  return (
    a.baudRate === b.baudRate &&
    (a.dataBits ?? 8) === (b.dataBits ?? 8) &&
    (a.stopBits ?? 1) === (b.stopBits ?? 1) &&
    (a.parity ?? "none") === (b.parity ?? "none")
  );
}

type PortState = { kind: "opening" } | { kind: "open" } | { kind: "failed"; error: Error; retryAt: number };

class SharedPort {
  readonly options: SerialOpenOptions;
  readonly #users = new Set<PortUser>();
  readonly #stop = new AbortController();
  #conn: SerialConnection | undefined;
  #state: PortState = { kind: "opening" };
  #lock: Promise<unknown> = Promise.resolve();
  #done: Promise<void>;

  constructor(
    private readonly factory: SerialPortFactory,
    options: SerialOpenOptions,
    private readonly logger: Logger,
    private readonly backoffMs: (attempt: number) => number,
    after: Promise<void>,
    private readonly onGone: () => void,
  ) {
    this.options = { ...options };
    this.#done = after.then(() => this.#run());
  }

  get isOpen(): boolean {
    return this.#state.kind === "open" && this.#conn !== undefined;
  }

  add(user: PortUser): void {
    this.#users.add(user);
    // A late joiner learns the current state at once, as if it had been there all along.
    const state = this.#state;
    if (state.kind === "open") queueMicrotask(() => this.#users.has(user) && safe(this.logger, user, () => user.onOpen()));
    if (state.kind === "failed") {
      queueMicrotask(() => this.#users.has(user) && safe(this.logger, user, () => user.onError(state.error, Math.max(0, state.retryAt - Date.now()))));
    }
  }

  /** Returns the closing promise when this was the last user. */
  remove(user: PortUser): Promise<void> | undefined {
    this.#users.delete(user);
    if (this.#users.size > 0) return undefined;
    this.onGone();
    this.#stop.abort();
    return this.#done;
  }

  write(data: Buffer): Promise<void> {
    if (!this.#conn || this.#state.kind !== "open") {
      return Promise.reject(new GatewayError("EGW_SERIAL_OPEN", `serial port ${this.options.path} is not open`));
    }
    return this.#conn.write(data);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  #each(what: (u: PortUser) => void): void {
    for (const u of [...this.#users]) safe(this.logger, u, () => what(u));
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let attempt = 0;
    let failedBefore = false;
    while (!signal.aborted) {
      if (failedBefore) this.#each((u) => u.onReopenAttempt());
      this.#state = { kind: "opening" };
      let lost!: (error?: Error) => void;
      const closed = new Promise<Error | undefined>((resolve) => (lost = resolve));
      let error: Error;
      try {
        const conn = await this.factory.open(this.options, {
          onData: (chunk) => this.#each((u) => u.onData(chunk)),
          onClose: (err) => lost(err),
        });
        if (signal.aborted) {
          await conn.close();
          break;
        }
        this.#conn = conn;
        this.#state = { kind: "open" };
        const openedAt = Date.now();
        this.logger.info({ port: this.options.path, reopened: failedBefore }, "serial port open");
        this.#each((u) => u.onOpen());
        const onAbort = () => lost(undefined);
        signal.addEventListener("abort", onAbort, { once: true });
        const why = await closed;
        signal.removeEventListener("abort", onAbort);
        this.#conn = undefined;
        if (signal.aborted) {
          await conn.close();
          break;
        }
        await conn.close();
        error = why ?? new GatewayError("EGW_SERIAL_OPEN", `serial port ${this.options.path} closed unexpectedly`);
        if (Date.now() - openedAt > STABLE_MS) attempt = 0;
      } catch (err) {
        error = err instanceof Error ? err : new GatewayError("EGW_SERIAL_OPEN", errorMessage(err), { cause: err });
      }
      if (signal.aborted) break;
      failedBefore = true;
      const wait = this.backoffMs(attempt++);
      this.#state = { kind: "failed", error, retryAt: Date.now() + wait };
      this.logger.warn({ port: this.options.path, err: error.message, retryInMs: wait }, "serial port unavailable; will reopen");
      this.#each((u) => u.onError(error, wait));
      await delay(wait, signal);
    }
    this.#state = { kind: "opening" };
  }
}

function safe(logger: Logger, user: PortUser, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error({ sensor: user.sensor, err: errorMessage(err) }, "serial port user callback threw");
  }
}
