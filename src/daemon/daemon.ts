/**
 * Composition and lifecycle, nothing else: wires the leaf connection, the publisher, the config
 * controller, the reconciler, events, the link monitor and the operations surface, and owns the
 * shutdown order, bounded by one deadline (`shutdownTimeout`, default 20 s):
 * drivers stop → publisher flush → persist seqs → operations close → NATS drain (or close).
 */
import { setMaxListeners } from "node:events";
import type { NatsConnection } from "@nats-io/nats-core";
import type { BootstrapConfig, MqttConfig, OutputConfig, SensorConfig } from "../config/schema.js";
import type { MqttIngest } from "../bridge/mqtt/types.js";
import type { Outputs } from "../drivers/gpio/index.js";
import { Publisher } from "../bridge/publisher.js";
import { clearHeld, loadHeld, saveHeld } from "../bridge/held-store.js";
import { SeqStore } from "../bridge/seq-store.js";
import { defaultRegistry, type DriverRegistry } from "../drivers/registry.js";
import type { HardwareSeams } from "../drivers/types.js";
import { errorMessage } from "../errors.js";
import { levelControl, type LevelControl, type Logger } from "../logger.js";
import { ClockSync, type ClockSyncProbe } from "./clock-sync.js";
import { withDeadline } from "./deadline.js";
import { GatewayEvents } from "./events.js";
import { ConfigController } from "./config-controller.js";
import { LeafConnection, leafConnectionOptions } from "./leaf-connection.js";
import { LinkMonitor, type LinkState } from "./link-monitor.js";
import { Operations, type OperationsOptions } from "./operations.js";
import { Reconciler } from "./reconciler.js";
import type { MqttRunnerSpec } from "./mqtt-source.js";
import type { SensorRunner } from "./sensor-runner.js";
import type { AppliedConfig, ConfigChanges, ConfigSource, EventKind, GatewayControl, GatewayView, MqttView, ReloadResult } from "./view.js";

export { leafConnectionOptions } from "./leaf-connection.js";
export type { AppliedConfig, ConfigChanges, ConfigSource, EventKind } from "./view.js";

export interface DaemonOptions {
  config: BootstrapConfig;
  logger: Logger;
  registry?: DriverRegistry;
  hardware?: HardwareSeams;
  /** Caps how long shutdown waits for queued readings (within `config.shutdownTimeout`). */
  flushTimeoutMs?: number;
  /** How often the uplink and buffer are checked. Default 5 s. */
  linkCheckMs?: number;
  /** Period of `events.dropped` reports (default 10 s; tests shorten it). */
  lossReportMs?: number;
  /**
   * Called after every applied config (at boot and on each applied KV revision), with the
   * whole document. Awaited; an error is logged and does not undo the rest.
   */
  onDocument?: (applied: AppliedConfig) => void | Promise<void>;
  /**
   * At boot, how long to wait for the leaf's config mirror before starting from the cache file
   * (or the bootstrap file). The mirror is followed anyway once readable. Default 2 s.
   */
  remoteBootWaitMs?: number;
  /** Remote documents larger than this are rejected. Default 1 MiB. */
  maxDocumentBytes?: number;
  /** Control service, HTTP endpoint and systemd notify settings (bootstrap file for `reload`…). */
  operations?: OperationsOptions;
  /** Whether the system clock is synchronised (readings are `uncertain` until it is); default: systemClockProbe(). */
  clockProbe?: ClockSyncProbe;
}

export class Daemon implements GatewayView, GatewayControl, AsyncDisposable {
  readonly config: BootstrapConfig;
  readonly publisher: Publisher;
  readonly startedAt = Date.now();
  readonly linkMonitor: LinkMonitor;
  /** Control service, /healthz + /metrics, systemd notify (set once started). */
  operations?: Operations;
  /** After `stop()`: true when every accepted reading was acknowledged by the leaf. */
  flushedCleanly = false;
  private readonly logger: Logger;
  private readonly levels: LevelControl;
  private readonly opts: DaemonOptions;
  private readonly seqs: SeqStore;
  private readonly root = new AbortController();
  private readonly leaf: LeafConnection;
  private readonly events: GatewayEvents;
  private readonly reconciler: Reconciler;
  private readonly controller: ConfigController;
  private readonly clock: ClockSync;
  private monitoring?: Promise<void>;
  private stopping?: Promise<void>;
  /** Readings restored from `held.json` are not all settled yet (the file must stay). */
  private heldRestoring = false;

  private constructor(opts: DaemonOptions, seqs: SeqStore, levels: LevelControl, leaf: LeafConnection) {
    // Every sensor runner and part listens on the root signal: no leak, just many parts.
    setMaxListeners(0, this.root.signal);
    this.opts = opts;
    this.config = opts.config;
    this.levels = levels;
    this.logger = levels.logger;
    this.seqs = seqs;
    this.leaf = leaf;
    const b = opts.config.buffer;
    this.publisher = new Publisher({
      deviceId: opts.config.device.id,
      region: opts.config.device.region,
      stream: b.stream,
      maxBytes: b.maxBytes,
      maxAgeMs: b.maxAge,
      duplicateWindowMs: b.duplicateWindow,
      queueSize: b.queueSize,
      maxInFlight: b.maxInFlight,
      ackTimeoutMs: b.ackTimeout,
      maxRatePerSensor: b.maxRatePerSensor,
      // Every loss leaves a trace: per-sensor counts on `gateway.<id>.events.dropped`, at most every 10 s.
      onLoss: (report) => this.events.emit("dropped", { sinceMs: report.sinceMs, sensors: report.sensors }),
      lossReportMs: opts.lossReportMs,
      seqs,
      logger: this.logger.child({ part: "publisher" }),
    });
    this.events = new GatewayEvents(opts.config.device.id, () => this.leaf.connection, this.logger);
    this.linkMonitor = new LinkMonitor({
      deviceId: opts.config.device.id,
      hubDomain: opts.config.nats.hubDomain,
      stream: b.stream,
      intervalMs: opts.linkCheckMs,
      logger: opts.logger.child({ part: "link" }),
      onChange: (state) => this.events.emit("link", { hub: state.hub, since: state.since, sourcing: state.sourcing, buffer: state.buffer, hubLag: state.hubLag }),
    });
    this.clock = ClockSync.follow(opts.clockProbe, { logger: this.logger.child({ part: "clock" }) });
    this.reconciler = new Reconciler({
      config: opts.config,
      levels,
      registry: opts.registry ?? defaultRegistry(),
      hardware: opts.hardware ?? {},
      emit: (r, onStored) => this.publisher.accept(r, onStored),
      onHealth: this.events.driverHealth,
      clockSynced: () => this.clock.synced,
      signal: this.root.signal,
      onDocument: opts.onDocument,
    });
    this.controller = new ConfigController({
      config: opts.config,
      leaf,
      reconciler: this.reconciler,
      events: this.events,
      logger: this.logger,
      signal: this.root.signal,
      remoteBootWaitMs: opts.remoteBootWaitMs,
      maxDocumentBytes: opts.maxDocumentBytes,
    });
    leaf.onConnected((nc) => {
      this.publisher.attach(nc);
      this.monitoring = this.linkMonitor.run(nc, this.root.signal);
    });
  }

  /**
   * Starts the daemon: sensors run at once (readings queue while the leaf is unreachable) and
   * the leaf connection is made in the background, retried forever.
   */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const levels = levelControl(opts.logger);
    // Bad credentials fail the start; an unreachable leaf does not (it is retried forever).
    const connOpts = await leafConnectionOptions(opts.config);
    const seqs = await SeqStore.open(opts.config.state, levels.logger.child({ part: "seq" }));
    const d = new Daemon(opts, seqs, levels, new LeafConnection(connOpts, levels.logger));
    await d.restoreHeld();
    await d.clock.ready;
    void d.leaf.start(d.root.signal);
    await d.controller.boot();
    d.operations = await Operations.start(d, d, { ...opts.operations, onStall: (stalled) => d.onStall(stalled) }, opts.logger);
    d.logger.info(
      { device: d.config.device.id, region: d.config.device.region, sensors: d.sensors().length, config: d.configSource, revision: d.configRevision },
      "edge-gateway started",
    );
    return d;
  }

  /** Uplink and buffer state, refreshed every few seconds. */
  get link(): LinkState {
    return this.linkMonitor.state;
  }

  /** KV revision of the running config; undefined when it is the bootstrap file's. */
  get configRevision(): number | undefined {
    return this.reconciler.applied.revision;
  }

  /** Where the running config came from. */
  get configSource(): ConfigSource {
    return this.reconciler.applied.source;
  }

  /** The whole running config (sensors, outputs, mqtt, log). */
  get appliedConfig(): AppliedConfig {
    return this.reconciler.applied;
  }

  /** The sensor configs currently applied. */
  get appliedSensors(): SensorConfig[] {
    return this.reconciler.appliedSensors;
  }

  /** The current log level (a document's `log.level` changes it without restarting anything). */
  get logLevel(): string {
    return this.levels.level;
  }

  /** The leaf connection once made (undefined before). */
  get connection(): NatsConnection | undefined {
    return this.leaf.connection;
  }

  get signal(): AbortSignal {
    return this.root.signal;
  }

  /** GPIO outputs (`outputs:`), settable through `outputs.set(id, value)`. */
  get outputs(): Outputs | undefined {
    return this.reconciler.outputs;
  }

  /** The MQTT ingest (`mqtt:`), when configured. */
  get mqtt(): MqttIngest | undefined {
    return this.reconciler.mqtt?.ingest;
  }

  get mqttIngest(): MqttView | undefined {
    return this.reconciler.mqtt?.view();
  }

  /** Every running entry (sensors, then MQTT subscriptions), for status, metrics and `read`. */
  sensors(): SensorRunner<SensorConfig | MqttRunnerSpec>[] {
    return this.reconciler.sensors();
  }

  /** See {@link ConfigController.reload}. */
  reload(): Promise<ReloadResult | undefined> {
    return this.controller.reload();
  }

  /** See {@link Reconciler.apply}. */
  applyConfig(applied: AppliedConfig): Promise<ConfigChanges> {
    return this.reconciler.apply(applied);
  }

  applySensors(sensors: SensorConfig[]): Promise<{ started: string[]; restarted: string[]; stopped: string[] }> {
    return this.reconciler.applySensors(sensors);
  }

  applyOutputs(outputs: OutputConfig[]): Promise<boolean> {
    return this.reconciler.applyOutputs(outputs);
  }

  applyMqtt(mqtt: MqttConfig | null): Promise<boolean> {
    return this.reconciler.applyMqtt(mqtt);
  }

  /** Calls `fn` with the leaf connection once it is made (at once if it already is). */
  onConnected(fn: (nc: NatsConnection) => void): void {
    this.leaf.onConnected(fn);
  }

  /** Publishes a JSON event on `gateway.<deviceId>.events.<kind>` (best effort, never throws). */
  emitEvent(kind: EventKind, payload: Record<string, unknown>): void {
    this.events.emit(kind, payload);
  }

  get configRejected(): number {
    return this.events.configRejected;
  }

  /**
   * Ordered shutdown within `config.shutdownTimeout`: stop drivers, flush the publisher, persist
   * state, drain the NATS connection (closed instead when the leaf cannot be reached in time).
   * Resolves, never rejects; safe to call twice; see `flushedCleanly`.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const timeoutMs = this.config.shutdownTimeout;
    const deadline = Date.now() + timeoutMs;
    // The last slice of the budget is the drain's; drivers get at most a quarter of it.
    const drainAt = deadline - Math.min(2000, timeoutMs / 10);
    const driversBy = Date.now() + timeoutMs / 4;
    await withDeadline(this.operations?.stopping() ?? Promise.resolve(), driversBy);
    this.logger.info({ timeoutMs }, "stopping: drivers");
    this.root.abort();
    // A config being applied sees the abort and starts nothing new; a wedged one is left behind.
    const idle = await this.reconciler.idle(driversBy);
    const driversStopped = idle && (await this.reconciler.stop(driversBy));
    if (!driversStopped) this.logger.error({ timeoutMs: timeoutMs / 4 }, "shutdown: some drivers did not stop in time; flushing anyway");
    await this.controller.stopped(driversBy);
    this.logger.info({ queued: this.publisher.stats.queued }, "stopping: flushing publisher");
    const flushMs = Math.max(0, Math.min(drainAt - Date.now(), this.opts.flushTimeoutMs ?? Infinity));
    this.flushedCleanly = this.leaf.connection ? await this.publisher.flush(flushMs) : this.publisher.stats.queued + this.publisher.stats.inFlight === 0;
    await withDeadline(this.publisher.close(), drainAt);
    await this.persistHeld(this.flushedCleanly ? "flushed" : "stop");
    await withDeadline(this.monitoring ?? Promise.resolve(), drainAt);
    await withDeadline(this.seqs.close(), deadline);
    this.clock.close();
    await withDeadline(this.operations?.close() ?? Promise.resolve(), drainAt);
    this.logger.info("stopping: draining NATS");
    await this.leaf.drain(deadline);
    this.logger.info({ stats: this.publisher.stats }, "stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Queues what the last stop left in `held.json` before any driver runs (see held-store). */
  private async restoreHeld(): Promise<void> {
    const state = this.config.state;
    const held = await loadHeld(state, this.logger);
    if (held.length === 0) return;
    this.logger.info({ readings: held.length }, "publishing the readings held at the last stop first (same seqs)");
    this.heldRestoring = true;
    this.publisher.restore(held, () => {
      this.heldRestoring = false;
      // Every one stored (or counted): the file goes, unless a stop is deciding what to keep.
      if (!this.stopping) void clearHeld(state).catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, "cannot remove held.json"));
    });
  }

  /**
   * `stop`: what the publisher still holds goes to `held.json` for the next start (the leaf was
   * unreachable); `flushed`: nothing is held, the file goes. Never rejects.
   */
  private async persistHeld(why: "stop" | "flushed"): Promise<void> {
    const state = this.config.state;
    const held = why === "flushed" ? [] : this.publisher.held();
    try {
      if (held.length === 0) {
        if (!this.heldRestoring) await clearHeld(state);
        return;
      }
      await saveHeld(state, held);
      this.logger.warn({ left: held.length, file: "held.json" }, "shutdown: the leaf was unreachable; readings kept in the state directory for the next start");
    } catch (err) {
      this.logger.error({ err: errorMessage(err), left: held.length }, "shutdown: readings left unpublished (leaf unreachable, and the state directory cannot be written)");
    }
  }

  /** The publisher stalled while connected (systemd will restart us): keep what it holds. */
  private async onStall(stalled: boolean): Promise<void> {
    if (!stalled) {
      if (!this.heldRestoring) await clearHeld(this.config.state).catch(() => undefined);
      return;
    }
    const held = this.publisher.held();
    if (held.length === 0) return;
    await saveHeld(this.config.state, held);
    this.logger.warn({ held: held.length }, "publisher stalled: readings kept in the state directory before the watchdog restart");
  }
}
