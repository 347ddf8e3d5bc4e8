/**
 * Runs one source of readings (a driver, or one MQTT subscription): iterates its readings,
 * applies the entry's `range`, `deadband` and `heartbeat`, keeps per-sensor state for `status`,
 * `/metrics` and `read`, and hands what passes to `emit`. A driver that throws is restarted with
 * backoff; nothing a driver does can crash the daemon.
 */
import type { SensorConfig } from "../config/schema.js";
import { backoff, delay } from "../util/backoff.js";
import { monotonicNow, newCounters } from "../drivers/util.js";
import type { Driver, DriverCounters, DriverHealth, Reading } from "../drivers/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { SensorState, SensorView } from "./view.js";

export type { SensorState } from "./view.js";

/** What the runner needs of an entry: its identity and its filter settings. */
export interface RunnerSpec extends Pick<SensorConfig, "id" | "type" | "range" | "deadband" | "heartbeat"> {
  /** Driver name (`mqtt` for an MQTT subscription). */
  driver: string;
}

/**
 * Decides which readings to publish: deadband with heartbeat, range → quality `uncertain`, and
 * `uncertain` while the system clock is not synchronised (DESIGN A2: `ts` cannot be trusted).
 * The heartbeat is measured on a monotonic clock, so a wall-clock step back (NTP on a Pi
 * without RTC) does not hold readings back until the wall clock catches up.
 */
export class ReadingFilter {
  private readonly last = new Map<string, { reading: Reading; at: number }>();
  private readonly clock: () => number;
  private readonly clockSynced: () => boolean;
  constructor(
    private readonly sensor: Pick<SensorConfig, "range" | "deadband" | "heartbeat">,
    opts: { clock?: () => number; clockSynced?: () => boolean } = {},
  ) {
    this.clock = opts.clock ?? monotonicNow;
    this.clockSynced = opts.clockSynced ?? (() => true);
  }

  /** The reading to publish (quality adjusted), or undefined to hold it back. */
  apply(r: Reading): Reading | undefined {
    const uncertain = r.quality === "good" && ((this.sensor.range && !this.inRange(r)) || !this.clockSynced());
    const out = uncertain ? { ...r, quality: "uncertain" as const } : r;
    const deadband = this.sensor.deadband;
    if (deadband === undefined) return out;
    const now = this.clock();
    const prev = this.last.get(out.sensor);
    if (prev && prev.reading.quality === out.quality && now - prev.at < this.sensor.heartbeat && !moved(prev.reading, out, deadband)) {
      return undefined;
    }
    this.last.set(out.sensor, { reading: out, at: now });
    return out;
  }

  private inRange(r: Reading): boolean {
    const [min, max] = this.sensor.range!;
    const values = r.values ? Object.values(r.values) : r.value !== undefined ? [r.value] : [];
    return values.every((v) => v >= min && v <= max);
  }
}

function moved(a: Reading, b: Reading, deadband: number): boolean {
  if (a.value !== undefined && b.value !== undefined) return Math.abs(a.value - b.value) >= deadband;
  const av = a.values ?? {};
  const bv = b.values ?? {};
  const keys = new Set([...Object.keys(av), ...Object.keys(bv)]);
  for (const k of keys) {
    const x = av[k];
    const y = bv[k];
    if (x === undefined || y === undefined || Math.abs(x - y) >= deadband) return true;
  }
  return false;
}

export interface SensorRunnerOptions<C extends RunnerSpec = SensorConfig> {
  sensor: C;
  /** Builds the driver; called again after a driver crash. */
  create: (counters: DriverCounters, report: (h: DriverHealth) => void) => Driver;
  emit: (r: Reading) => void;
  logger: Logger;
  /** Called when the driver's health changes (for events and status). */
  onHealth?: (sensorId: string, health: DriverHealth) => void;
  /**
   * One status row per sensor id the source produces (MQTT wildcard subscriptions), instead of
   * one row for the entry. Default false.
   */
  rowPerSensor?: boolean;
  /** Driver counters to update (e.g. shared with the MQTT ingest); fresh ones by default. */
  counters?: DriverCounters;
  /** False while the system clock is not synchronised: readings are then `uncertain` (see ClockSync). Default: always true. */
  clockSynced?: () => boolean;
}

export class SensorRunner<C extends RunnerSpec = SensorConfig> implements SensorView {
  readonly state: SensorState;
  readonly config: C;
  private readonly abort = new AbortController();
  private driver?: Driver;
  private done?: Promise<void>;
  private readonly opts: SensorRunnerOptions<C>;
  /** Per produced sensor id (only with `rowPerSensor`). */
  private readonly perSensor = new Map<string, SensorState>();
  private readonly last = new Map<string, Reading>();

  constructor(opts: SensorRunnerOptions<C>) {
    this.opts = opts;
    this.config = opts.sensor;
    const s = opts.sensor;
    this.state = { id: s.id, driver: s.driver, type: s.type, counters: opts.counters ?? newCounters(), published: 0, suppressed: 0, health: { state: "ok" } };
  }

  get id(): string {
    return this.config.id;
  }

  /** Status rows: the entry, or one per produced sensor id (see `rowPerSensor`). */
  rows(): SensorState[] {
    if (!this.opts.rowPerSensor) return [this.state];
    return [...this.perSensor.values()].map((row) => ({ ...row, health: this.state.health }));
  }

  /** The last reading (after range, before deadband) of `sensorId`, if this entry produced one. */
  lastReadingOf(sensorId: string): Reading | undefined {
    return this.last.get(sensorId);
  }

  /** Sensor ids this entry produced so far. */
  sensorIds(): string[] {
    return [...this.last.keys()];
  }

  start(parent: AbortSignal): void {
    if (this.done) return;
    // An already-aborted signal never fires "abort": a runner started during shutdown must
    // not run on.
    if (parent.aborted) this.abort.abort();
    const onAbort = () => this.abort.abort();
    parent.addEventListener("abort", onAbort, { once: true });
    this.done = this.loop().finally(() => parent.removeEventListener("abort", onAbort));
  }

  /** A fresh sample where the driver can poll; undefined otherwise. */
  async poll(): Promise<Reading[] | undefined> {
    return this.driver?.poll?.();
  }

  private report = (h: DriverHealth): void => {
    const was = this.state.health.state;
    this.state.health = h;
    if (h.state === "error") {
      this.state.counters.errors++;
      this.opts.logger.warn({ sensor: this.config.id, err: h.error.message, code: (h.error as { code?: string }).code }, "driver error");
    } else if (was === "error") {
      this.opts.logger.info({ sensor: this.config.id }, "driver recovered");
    }
    if (h.state !== was || h.state === "error") this.opts.onHealth?.(this.config.id, h);
  };

  private rowOf(r: Reading): SensorState | undefined {
    if (!this.opts.rowPerSensor) return undefined;
    let row = this.perSensor.get(r.sensor);
    if (!row) {
      // Messages a subscription skipped cannot be told apart by sensor id: those stay in the
      // source's own counters (MQTT: `mqtt_*` metrics); a row counts its own readings.
      row = { id: r.sensor, driver: this.state.driver, type: r.type, counters: newCounters(), published: 0, suppressed: 0, health: this.state.health };
      this.perSensor.set(r.sensor, row);
    }
    row.counters.read++;
    return row;
  }

  private async loop(): Promise<void> {
    const filter = new ReadingFilter(this.config, this.opts.clockSynced ? { clockSynced: this.opts.clockSynced } : {});
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      try {
        this.driver = this.opts.create(this.state.counters, this.report);
        for await (const r of this.driver.start(this.abort.signal)) {
          attempt = 0;
          // A reading after an error means the driver works again (not every driver says so).
          if (this.state.health.state === "error") this.report({ state: "ok" });
          const out = filter.apply(r);
          const row = this.rowOf(r);
          this.state.lastReading = out ?? r;
          this.last.set(r.sensor, out ?? r);
          if (row) row.lastReading = out ?? r;
          if (!out) {
            this.state.suppressed++;
            if (row) row.suppressed++;
            continue;
          }
          this.state.published++;
          if (row) row.published++;
          this.opts.emit(out);
        }
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.report({ state: "error", error: err instanceof Error ? err : new Error(errorMessage(err)) });
      } finally {
        await this.driver?.close().catch(() => undefined);
      }
      if (this.abort.signal.aborted) break;
      // The iterable ended without an abort (or threw): restart the driver after a backoff.
      await delay(backoff(attempt++), this.abort.signal);
    }
  }

  /** Stops the driver and waits until its loop ended. Safe to call twice. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.driver?.close().catch(() => undefined);
    await this.done;
  }
}
