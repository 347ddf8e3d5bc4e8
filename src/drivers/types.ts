/**
 * The driver contract. Types only: this file imports no implementation.
 *
 * A driver turns one piece of hardware (or a simulation of it) into an async stream of
 * {@link Reading}s. It knows nothing about NATS, subjects, sequence numbers or message ids:
 * the daemon assigns those when it hands a reading to the bridge.
 */
import type { Logger } from "pino";
import type { GpioFactory } from "./gpio/types.js";
import type { SerialPortFactory } from "./serial/types.js";

/** `good`, `uncertain` (clock not synced, out of configured range), `bad` (sensor reports a fault). */
export type Quality = "good" | "uncertain" | "bad";

/** One sample as a driver produced it. */
export interface Reading {
  /** Sensor id. Drivers that fan out (ds18b20 `address: auto`, MQTT ingest) set one per device. */
  sensor: string;
  /** Quantity or sensor kind; the `<type>` subject token. */
  type: string;
  /** Milliseconds since the epoch, taken when the sample was read. */
  ts: number;
  /** Single-valued sensors. Exactly one of `value` / `values` is set. */
  value?: number;
  /** Multi-valued sensors, e.g. `{pm1_0: 3, pm2_5: 5, pm10: 7}`. */
  values?: Record<string, number>;
  /** SenML unit symbol for `value`, or for all of `values`. */
  unit?: string;
  /** Per-name units for `values`. */
  units?: Record<string, string>;
  quality: Quality;
}

/** Health of a driver, reported through {@link DriverContext.report}. */
export type DriverHealth =
  | { state: "ok" }
  | { state: "error"; error: Error; retryInMs?: number };

/**
 * Per-sensor counters, exposed by the status endpoint and metrics.
 * `rejected` is keyed by reason (`checksum`, `parse`, `too-long`, `no-fix`, …).
 */
export interface DriverCounters {
  /** Frames, lines or samples read from the hardware (valid or not). */
  read: number;
  rejected: Record<string, number>;
  /** Attempts to (re)open the underlying device after a failure. */
  reopens: number;
  errors: number;
}

/** What the daemon gives every driver. */
export interface DriverContext {
  logger: Logger;
  /** Directory for state that must survive restarts (e.g. pulse counter totals). */
  stateDir: string;
  counters: DriverCounters;
  /** Report that the driver failed or recovered. Never throws. */
  report(health: DriverHealth): void;
  /** Hardware seams; each driver uses the one it needs. */
  hardware: HardwareSeams;
}

/** A running source of readings. `close()` is safe to call twice and resolves, never rejects. */
export interface Driver extends AsyncDisposable {
  /**
   * Starts the driver. The iterable ends when `signal` aborts or `close()` is called; hardware
   * errors do not end it (the driver reports them and retries with backoff).
   */
  start(signal: AbortSignal): AsyncIterable<Reading>;
  /** Takes a fresh sample now, where the hardware can be polled; otherwise undefined. */
  poll?(): Promise<Reading[] | undefined>;
  close(): Promise<void>;
}

/** Builds a driver from its validated sensor config. */
export type DriverFactory<Config> = (config: Config, ctx: DriverContext) => Driver;

/**
 * Hardware seams: narrow interfaces that production code and tests implement. Each is optional
 * in the type so that a test only supplies what it exercises; the daemon supplies them all.
 */
export interface HardwareSeams {
  /**
   * Opens serial ports (production: `serialport`; tests: the same factory on a real pty path).
   * Sensors whose ports are opened through one factory instance share ports by path; without
   * one, serial drivers use the production factory.
   */
  serial?: SerialPortFactory;
  /**
   * Exports GPIO pins (production: `createOnoffGpioFactory()`; tests: a fake with controlled
   * edges). Pass the same factory to every GPIO sensor and to the outputs. When absent, GPIO
   * drivers use one process-wide onoff factory.
   */
  gpio?: GpioFactory;
  /** Root of sysfs (production: `/sys`; tests: a temp dir with the real file format). */
  sysfsRoot?: string;
  /** Clock, for drivers whose timing tests need control. */
  now?: () => number;
}
