/**
 * Wiring and lifecycle: connect to the local leaf, start the publisher and one runner per
 * sensor, apply config changes as a difference, and shut down in order
 * (drivers → publisher flush → NATS drain).
 */
import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import type { BootstrapConfig, OutputConfig, SensorConfig } from "../config/schema.js";
import { openOutputs, type Outputs } from "../drivers/gpio/index.js";
import { Publisher } from "../bridge/publisher.js";
import { SeqStore } from "../bridge/seq-store.js";
import { createDriver, defaultRegistry, type DriverRegistry } from "../drivers/registry.js";
import { backoff, delay } from "../drivers/util.js";
import type { DriverHealth, HardwareSeams, Reading } from "../drivers/types.js";
import { GatewayError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { LinkMonitor, type LinkState } from "./link-monitor.js";
import { Operations, type OperationsOptions } from "./operations.js";
import { SensorRunner } from "./sensor-runner.js";

export interface DaemonOptions {
  config: BootstrapConfig;
  logger: Logger;
  registry?: DriverRegistry;
  hardware?: HardwareSeams;
  /** How long shutdown waits for queued readings to be acknowledged. Default 10 s. */
  flushTimeoutMs?: number;
  /** How often the uplink and buffer are checked. Default 5 s. */
  linkCheckMs?: number;
  /** Control service, HTTP endpoint and systemd notify settings (bootstrap file for `reload`…). */
  operations?: OperationsOptions;
}

export type EventKind = "config" | "driver" | "link";

/** Builds the nats.js connection options for the local leaf from the bootstrap config. */
export async function leafConnectionOptions(config: BootstrapConfig): Promise<ConnectionOptions> {
  const n = config.nats;
  const opts: ConnectionOptions = {
    servers: n.servers,
    name: `edge-gateway ${config.device.id}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
  };
  if (n.credentials) {
    try {
      opts.authenticator = credsAuthenticator(await readFile(n.credentials));
    } catch (cause) {
      throw new GatewayError("EGW_NATS_CONNECT", `cannot read nats.credentials ${n.credentials}: check the path and that the daemon may read it`, { cause });
    }
  }
  if (n.user) opts.user = n.user;
  if (n.password) opts.pass = n.password;
  if (n.token) opts.token = n.token;
  return opts;
}

export class Daemon implements AsyncDisposable {
  readonly config: BootstrapConfig;
  readonly publisher: Publisher;
  readonly startedAt = Date.now();
  private readonly logger: Logger;
  private readonly registry: DriverRegistry;
  private readonly hardware: HardwareSeams;
  private readonly seqs: SeqStore;
  private readonly root = new AbortController();
  private readonly runners = new Map<string, SensorRunner>();
  private nc?: NatsConnection;
  private connecting?: Promise<void>;
  private stopping?: Promise<void>;
  private readonly flushTimeoutMs: number;
  private sensorsConfig: SensorConfig[] = [];
  readonly linkMonitor: LinkMonitor;
  /** GPIO outputs (`outputs:`), settable through `outputs.set(id, value)`. */
  outputs?: Outputs;
  private outputsConfig: OutputConfig[] = [];
  private monitoring?: Promise<void>;
  /** Control service, /healthz + /metrics, systemd notify (set once started). */
  operations?: Operations;
  private connectedHooks: ((nc: NatsConnection) => void)[] = [];
  /** Last driver event per sensor (`failed:<message>` / `recovered`), to send each change once. */
  private readonly driverEvents = new Map<string, string>();
  /** After `stop()`: true when every accepted reading was acknowledged by the leaf. */
  flushedCleanly = false;

  private constructor(opts: DaemonOptions, seqs: SeqStore) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.registry = opts.registry ?? defaultRegistry();
    this.hardware = opts.hardware ?? {};
    this.seqs = seqs;
    this.flushTimeoutMs = opts.flushTimeoutMs ?? 10_000;
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
      seqs,
      logger: opts.logger.child({ part: "publisher" }),
    });
    this.linkMonitor = new LinkMonitor({
      deviceId: opts.config.device.id,
      hubDomain: opts.config.nats.hubDomain,
      stream: b.stream,
      intervalMs: opts.linkCheckMs,
      logger: opts.logger.child({ part: "link" }),
      onChange: (state) => this.emitEvent("link", { hub: state.hub, since: state.since, buffer: state.buffer, hubLag: state.hubLag }),
    });
  }

  /** Uplink and buffer state, refreshed every few seconds. */
  get link(): LinkState {
    return this.linkMonitor.state;
  }

  /**
   * Starts the daemon: sensors run at once (readings queue while the leaf is unreachable) and
   * the leaf connection is made in the background, retried forever.
   */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const seqs = await SeqStore.open(opts.config.state, opts.logger.child({ part: "seq" }));
    const d = new Daemon(opts, seqs);
    // Bad credentials fail the start; an unreachable leaf does not (it is retried forever).
    const connOpts = await leafConnectionOptions(opts.config);
    d.connecting = d.connectLeaf(connOpts);
    await d.applyOutputs(opts.config.outputs);
    await d.applySensors(opts.config.sensors);
    d.operations = await Operations.start(d, opts.operations ?? {}, opts.logger.child({ part: "ops" }));
    d.logger.info({ device: d.config.device.id, region: d.config.device.region, sensors: d.runners.size }, "edge-gateway started");
    return d;
  }

  /** The leaf connection once made (undefined before). */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  get signal(): AbortSignal {
    return this.root.signal;
  }

  /** Sensor states for the status endpoint and metrics. */
  sensors(): SensorRunner[] {
    return [...this.runners.values()];
  }

  /** Connects to the local leaf, retrying with backoff until it answers or the daemon stops. */
  private async connectLeaf(opts: ConnectionOptions): Promise<void> {
    for (let attempt = 0; !this.root.signal.aborted; attempt++) {
      try {
        const nc = await connect(opts);
        if (this.root.signal.aborted) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.logger.info({ server: nc.getServer() }, "connected to the local leaf");
        this.publisher.attach(nc);
        this.monitoring = this.linkMonitor.run(nc, this.root.signal);
        for (const fn of this.connectedHooks.splice(0)) fn(nc);
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 20 === 0) {
          this.logger.warn({ err: errorMessage(err), servers: opts.servers, attempt }, "local leaf not reachable yet: readings are queued; retrying");
        }
        await delay(Math.min(backoff(attempt, 250), 5000), this.root.signal);
      }
    }
  }

  /** Calls `fn` with the leaf connection once it is made (at once if it already is). */
  onConnected(fn: (nc: NatsConnection) => void): void {
    if (this.nc) fn(this.nc);
    else this.connectedHooks.push(fn);
  }

  /** Publishes a JSON event on `gateway.<deviceId>.events.<kind>` (best effort, never throws). */
  emitEvent(kind: EventKind, payload: Record<string, unknown>): void {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    try {
      nc.publish(`gateway.${this.config.device.id}.events.${kind}`, JSON.stringify({ device: this.config.device.id, ts: Date.now(), ...payload }));
    } catch (err) {
      this.logger.debug({ err: errorMessage(err), kind }, "event not published");
    }
  }

  private emitReading = (r: Reading): void => this.publisher.accept(r);

  private onHealth = (sensor: string, h: DriverHealth): void => {
    // Drivers report an error on every retry: send an event only when the state or the message changes.
    const key = h.state === "error" ? `failed:${h.error.message}` : "recovered";
    const last = this.driverEvents.get(sensor);
    if (key === last || (h.state === "ok" && last === undefined)) return;
    this.driverEvents.set(sensor, key);
    this.emitEvent("driver", h.state === "error" ? { sensor, status: "failed", error: h.error.message, code: (h.error as { code?: string }).code } : { sensor, status: "recovered" });
  };

  private startRunner(sensor: SensorConfig): void {
    const runner = new SensorRunner({
      sensor,
      logger: this.logger.child({ sensor: sensor.id }),
      emit: this.emitReading,
      onHealth: this.onHealth,
      create: (counters, report) =>
        createDriver(this.registry, sensor, {
          logger: this.logger.child({ sensor: sensor.id, driver: sensor.driver }),
          stateDir: this.config.state,
          counters,
          report,
          hardware: this.hardware,
        }),
    });
    this.runners.set(sensor.id, runner);
    runner.start(this.root.signal);
  }

  /**
   * Makes the running sensors match `sensors`: unchanged ones keep running (their seq streams
   * uninterrupted), changed ones restart, new ones start, removed ones stop.
   * Returns the ids that changed.
   */
  async applySensors(sensors: SensorConfig[]): Promise<{ started: string[]; restarted: string[]; stopped: string[] }> {
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
    await Promise.all(stops);
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
    if (this.outputs && JSON.stringify(outputs) === JSON.stringify(this.outputsConfig)) return false;
    await this.outputs?.close();
    this.outputs = undefined;
    this.outputsConfig = outputs;
    if (outputs.length > 0) {
      this.outputs = await openOutputs(outputs, {
        logger: this.logger.child({ part: "outputs" }),
        hardware: this.hardware,
        report: (id, h) => this.onHealth(`output:${id}`, h),
      });
    }
    return true;
  }

  /** The sensor configs currently applied. */
  get appliedSensors(): SensorConfig[] {
    return this.sensorsConfig;
  }

  /**
   * Ordered shutdown: stop drivers, flush the publisher (up to the flush timeout), persist
   * state, drain the NATS connection. Safe to call twice; see `flushedCleanly`.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await this.operations?.stopping();
    this.logger.info("stopping: drivers");
    this.root.abort();
    await this.connecting;
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    await this.outputs?.close();
    this.logger.info({ queued: this.publisher.stats.queued }, "stopping: flushing publisher");
    this.flushedCleanly = this.nc ? await this.publisher.flush(this.flushTimeoutMs) : this.publisher.stats.queued === 0;
    if (!this.flushedCleanly) {
      this.logger.error({ left: this.publisher.stats.queued + this.publisher.stats.inFlight }, "shutdown: readings left unpublished (leaf unreachable)");
    }
    await this.publisher.close();
    await this.monitoring;
    await this.seqs.close();
    await this.operations?.close();
    if (this.nc) {
      this.logger.info("stopping: draining NATS");
      await this.nc.drain().catch(() => this.nc?.close());
    }
    this.logger.info({ stats: this.publisher.stats }, "stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
