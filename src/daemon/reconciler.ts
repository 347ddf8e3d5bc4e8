/**
 * The only place that applies a config: sensors (as a difference: unchanged ones keep running),
 * GPIO outputs, the MQTT source and the log level. One lock: configs are applied one at a time,
 * in the order they were asked for. A part whose close hangs (a wedged USB adapter) is given up
 * on after `partStopMs`, so it cannot block later revisions.
 */
import type { BootstrapConfig, MqttConfig, OutputConfig, SensorConfig } from "../config/schema.js";
import { openOutputs, type Outputs } from "../drivers/gpio/index.js";
import { createDriver, type DriverRegistry } from "../drivers/registry.js";
import type { DriverHealth, HardwareSeams, Reading } from "../drivers/types.js";
import { errorMessage } from "../errors.js";
import type { LevelControl, Logger } from "../logger.js";
import { withDeadline } from "./deadline.js";
import { MqttSource, type MqttRunnerSpec } from "./mqtt-source.js";
import type { StoredCallback } from "../bridge/publisher.js";
import { SensorRunner } from "./sensor-runner.js";
import type { AppliedConfig, ConfigChanges } from "./view.js";

export interface ReconcilerOptions {
  config: BootstrapConfig;
  levels: LevelControl;
  registry: DriverRegistry;
  hardware: HardwareSeams;
  /** Where readings that passed a runner's filter go (the publisher); `onStored` as in `Publisher.accept`. */
  emit: (r: Reading, onStored?: StoredCallback) => void;
  /** Driver / output / MQTT health changes (for events). */
  onHealth: (sensor: string, h: DriverHealth) => void;
  /** False while the system clock is not synchronised: readings are then `uncertain`. */
  clockSynced?: () => boolean;
  /** The daemon's root signal: once aborted nothing new starts. */
  signal: AbortSignal;
  /** Called after every applied config; awaited, an error is logged. */
  onDocument?: (applied: AppliedConfig) => void | Promise<void>;
  /** How long a stopping sensor, the outputs or the MQTT source may take. Default 5 s. */
  partStopMs?: number;
}

/** The bootstrap file's own settings as a document. */
export function bootstrapDocument(config: BootstrapConfig): AppliedConfig {
  const { sensors, outputs, mqtt, log } = config;
  return { source: "bootstrap", document: { sensors, outputs, mqtt, log } };
}

export class Reconciler {
  private readonly opts: ReconcilerOptions;
  private readonly logger: Logger;
  private readonly baseLevel: LevelControl["level"];
  private readonly partStopMs: number;
  private readonly runners = new Map<string, SensorRunner>();
  private applying: Promise<unknown> = Promise.resolve();
  private current: AppliedConfig;
  private sensorsConfig: SensorConfig[] = [];
  private outputsConfig?: OutputConfig[];
  private mqttConfig?: MqttConfig | null;
  /** GPIO outputs (`outputs:`), when configured. */
  outputs?: Outputs;
  /** The MQTT source (`mqtt:`), when configured. */
  mqtt?: MqttSource;

  constructor(opts: ReconcilerOptions) {
    this.opts = opts;
    this.logger = opts.levels.logger;
    this.baseLevel = opts.levels.level;
    this.partStopMs = opts.partStopMs ?? 5000;
    this.current = bootstrapDocument(opts.config);
  }

  /** The config running now (the bootstrap file's until the first apply). */
  get applied(): AppliedConfig {
    return this.current;
  }

  /** The sensor configs currently applied. */
  get appliedSensors(): SensorConfig[] {
    return this.sensorsConfig;
  }

  /** Every running entry: sensors, then the MQTT subscriptions. */
  sensors(): SensorRunner<SensorConfig | MqttRunnerSpec>[] {
    return [...this.runners.values(), ...(this.mqtt?.runners ?? [])] as SensorRunner<SensorConfig | MqttRunnerSpec>[];
  }

  /**
   * Makes the daemon run `applied`: sensors as a difference, outputs, MQTT, the log level
   * without restarting anything, then `onDocument`. Serialised: one config at a time. With
   * `ifNewerThanRunning`, a revision older than the running one is skipped (undefined).
   */
  apply(applied: AppliedConfig): Promise<ConfigChanges>;
  apply(applied: AppliedConfig, opts: { ifNewerThanRunning: number }): Promise<ConfigChanges | undefined>;
  apply(applied: AppliedConfig, opts?: { ifNewerThanRunning: number }): Promise<ConfigChanges | undefined> {
    const run = this.applying.then(async () => {
      const running = this.current.source === "mirror" ? this.current.revision : undefined;
      if (opts && running !== undefined && opts.ifNewerThanRunning < running) {
        this.logger.info({ revision: opts.ifNewerThanRunning, running }, "skipping an older config revision");
        return undefined;
      }
      const changes: ConfigChanges = await this.applySensors(applied.document.sensors);
      changes.outputs = await this.applyOutputs(applied.document.outputs);
      changes.mqtt = await this.applyMqtt(applied.document.mqtt);
      const level = applied.input && "log" in applied.input ? applied.document.log.level : this.baseLevel;
      if (level !== this.opts.levels.level) {
        this.logger.info({ from: this.opts.levels.level, to: level }, "log level changed");
        this.opts.levels.setLevel(level);
      }
      this.current = applied;
      if (this.opts.onDocument) {
        try {
          await this.opts.onDocument(applied);
        } catch (err) {
          this.logger.error({ err: errorMessage(err), source: applied.source, revision: applied.revision }, "onDocument failed");
        }
      }
      return changes;
    });
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no config is being applied, or at `deadline` (ms since epoch). */
  async idle(deadline: number): Promise<boolean> {
    return (await withDeadline(this.applying, deadline)) !== "timeout";
  }

  /** Waits for `stops`, at most `partStopMs`; logs what did not stop in time. */
  private async bounded(stops: Promise<unknown>[], what: string): Promise<void> {
    if (stops.length === 0) return;
    const done = await withDeadline(Promise.all(stops), Date.now() + this.partStopMs);
    if (done === "timeout") this.logger.error({ what, timeoutMs: this.partStopMs }, "did not stop in time: going on without it (its device may be wedged)");
  }

  private startRunner(sensor: SensorConfig): void {
    const logger = this.logger.child({ sensor: sensor.id });
    const runner = new SensorRunner({
      sensor,
      logger,
      emit: this.opts.emit,
      onHealth: this.opts.onHealth,
      clockSynced: this.opts.clockSynced,
      create: (counters, report) =>
        createDriver(this.opts.registry, sensor, {
          logger: this.logger.child({ sensor: sensor.id, driver: sensor.driver }),
          stateDir: this.opts.config.state,
          counters,
          report,
          hardware: this.opts.hardware,
        }),
    });
    this.runners.set(sensor.id, runner);
    runner.start(this.opts.signal);
    logger.debug({ driver: sensor.driver }, "sensor started");
  }

  /**
   * Makes the running sensors match `sensors`: unchanged ones keep running (their seq streams
   * uninterrupted), changed ones restart, new ones start, removed ones stop.
   */
  async applySensors(sensors: SensorConfig[]): Promise<{ started: string[]; restarted: string[]; stopped: string[] }> {
    if (this.opts.signal.aborted) return { started: [], restarted: [], stopped: [] };
    const want = new Map(sensors.filter((s) => s.enabled).map((s) => [s.id, s]));
    const started: string[] = [];
    const restarted: string[] = [];
    const stopped: string[] = [];
    const stops: Promise<void>[] = [];
    for (const [id, runner] of this.runners) {
      const next = want.get(id);
      if (!next) {
        stopped.push(id);
        this.runners.delete(id);
        stops.push(runner.stop());
      } else if (JSON.stringify(next) !== JSON.stringify(runner.config)) {
        restarted.push(id);
        this.runners.delete(id);
        stops.push(runner.stop());
      }
    }
    await this.bounded(stops, `sensors ${[...stopped, ...restarted].join(", ")}`);
    for (const [id, s] of want) {
      if (this.runners.has(id)) continue;
      if (!restarted.includes(id)) started.push(id);
      this.startRunner(s);
    }
    this.sensorsConfig = sensors;
    return { started, restarted, stopped };
  }

  /**
   * Opens the configured GPIO outputs, re-opening them all when the list changed. Never
   * rejects: a pin that cannot be opened is reported as a driver event and retried.
   */
  async applyOutputs(outputs: OutputConfig[]): Promise<boolean> {
    if (this.outputsConfig !== undefined && JSON.stringify(outputs) === JSON.stringify(this.outputsConfig)) return false;
    if (this.opts.signal.aborted) return false;
    if (this.outputs) await this.bounded([this.outputs.close()], "GPIO outputs");
    this.outputs = undefined;
    this.outputsConfig = outputs;
    if (outputs.length > 0) {
      this.outputs = await openOutputs(outputs, {
        logger: this.logger.child({ part: "outputs" }),
        hardware: this.opts.hardware,
        report: (id, h) => this.opts.onHealth(`output:${id}`, h),
      });
    }
    return true;
  }

  /**
   * Starts, restarts (when its settings changed) or stops the MQTT source. Its subscriptions
   * run like sensors. Returns true when something changed.
   */
  async applyMqtt(mqtt: MqttConfig | null): Promise<boolean> {
    if (this.mqttConfig !== undefined && JSON.stringify(mqtt) === JSON.stringify(this.mqttConfig)) return false;
    if (this.mqtt) await this.bounded([this.mqtt.stop()], "MQTT source");
    this.mqtt = undefined;
    this.mqttConfig = mqtt;
    if (!mqtt || this.opts.signal.aborted) return true;
    this.mqtt = await MqttSource.start(mqtt, {
      deviceId: this.opts.config.device.id,
      logger: this.logger,
      emit: this.opts.emit,
      onHealth: this.opts.onHealth,
      clockSynced: this.opts.clockSynced,
      signal: this.opts.signal,
    });
    return true;
  }

  /**
   * Stops every sensor, the outputs and the MQTT source (readings it already took from the
   * broker are emitted first), giving up at `deadline`. Returns false when something did not
   * stop in time.
   */
  async stop(deadline: number): Promise<boolean> {
    const sensors = Promise.all([...this.runners.values()].map((r) => r.stop()));
    const all = Promise.all([sensors, this.outputs?.close(), this.mqtt?.stop()]);
    return (await withDeadline(all, deadline)) !== "timeout";
  }
}
