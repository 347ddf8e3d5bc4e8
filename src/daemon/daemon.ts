/**
 * Wiring and lifecycle: connect to the local leaf, start the publisher and one runner per
 * sensor, apply config changes as a difference, and shut down in order
 * (drivers → publisher flush → NATS drain).
 */
import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import type { BootstrapConfig, MqttConfig, OutputConfig, RemoteDocument, SensorConfig } from "../config/schema.js";
import { readConfigCache, removeConfigCache, RemoteConfig, writeConfigCache, type RemoteRevision } from "../config/remote.js";
import { createMqttIngest } from "../bridge/mqtt-ingest.js";
import type { MqttIngest } from "../bridge/mqtt/types.js";
import { openOutputs, type Outputs } from "../drivers/gpio/index.js";
import { Publisher } from "../bridge/publisher.js";
import { SeqStore } from "../bridge/seq-store.js";
import { createDriver, defaultRegistry, type DriverRegistry } from "../drivers/registry.js";
import { backoff, delay } from "../drivers/util.js";
import type { DriverHealth, HardwareSeams, Reading } from "../drivers/types.js";
import { GatewayError, errorMessage } from "../errors.js";
import { levelControl, type LevelControl, type Logger } from "../logger.js";
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
  /**
   * Called after every applied config (at boot and on each applied KV revision), with the
   * whole document: the place to apply `outputs` and `mqtt`. Awaited; an error is logged and
   * does not undo the rest.
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
}

/** Where the running config came from (DESIGN A6 boot order: mirror → cache → bootstrap). */
export type ConfigSource = "mirror" | "cache" | "bootstrap";

/** The config the daemon runs. */
export interface AppliedConfig {
  source: ConfigSource;
  /** KV revision of the document; undefined for the bootstrap file. */
  revision?: number;
  /** The validated document (defaults filled in). */
  document: RemoteDocument;
  /** The document as written (JSON), when it came from the KV or the cache. */
  input?: Record<string, unknown>;
}

/** What an applied config changed. */
export interface ConfigChanges {
  started: string[];
  restarted: string[];
  stopped: string[];
  /** True when the GPIO outputs were re-opened / the MQTT ingest restarted. */
  outputs?: boolean;
  mqtt?: boolean;
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

/** Resolves with `p`'s value, or false when `ms` passed first. */
async function withDeadline(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export class Daemon implements AsyncDisposable {
  readonly config: BootstrapConfig;
  readonly publisher: Publisher;
  readonly startedAt = Date.now();
  private readonly logger: Logger;
  private readonly levels: LevelControl;
  /** The log level the daemon was started with; documents without `log` go back to it. */
  private readonly baseLevel: LevelControl["level"];
  private readonly opts: DaemonOptions;
  private applied: AppliedConfig;
  private applying: Promise<unknown> = Promise.resolve();
  private remote?: RemoteConfig;
  private following?: Promise<void>;
  private readonly registry: DriverRegistry;
  private readonly hardware: HardwareSeams;
  private readonly seqs: SeqStore;
  private readonly root = new AbortController();
  private readonly runners = new Map<string, SensorRunner>();
  private nc?: NatsConnection;
  private connecting?: Promise<void>;
  private stopping?: Promise<void>;
  private readonly flushTimeoutMs: number;
  private readonly driverStopTimeoutMs = 5000;
  private sensorsConfig: SensorConfig[] = [];
  readonly linkMonitor: LinkMonitor;
  /** GPIO outputs (`outputs:`), settable through `outputs.set(id, value)`. */
  outputs?: Outputs;
  private outputsConfig?: OutputConfig[];
  /** MQTT ingest (`mqtt:`), when configured. */
  mqtt?: MqttIngest;
  private mqttConfig?: MqttConfig | null;
  private mqttAbort?: AbortController;
  private mqttLoop?: Promise<void>;
  private monitoring?: Promise<void>;
  /** Control service, /healthz + /metrics, systemd notify (set once started). */
  operations?: Operations;
  private connectedHooks: ((nc: NatsConnection) => void)[] = [];
  /** Last driver event per sensor (`failed:<message>` / `recovered`), to send each change once. */
  private readonly driverEvents = new Map<string, string>();
  /** After `stop()`: true when every accepted reading was acknowledged by the leaf. */
  flushedCleanly = false;

  private constructor(opts: DaemonOptions, seqs: SeqStore, levels: LevelControl) {
    // Every sensor runner and part listens on the root signal: no leak, just many parts.
    setMaxListeners(0, this.root.signal);
    this.opts = opts;
    this.config = opts.config;
    this.levels = levels;
    this.baseLevel = levels.level;
    this.logger = levels.logger;
    this.applied = this.bootstrapConfig();
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
      logger: this.logger.child({ part: "publisher" }),
    });
    this.linkMonitor = new LinkMonitor({
      deviceId: opts.config.device.id,
      hubDomain: opts.config.nats.hubDomain,
      stream: b.stream,
      intervalMs: opts.linkCheckMs,
      logger: opts.logger.child({ part: "link" }),
      onChange: (state) => this.emitEvent("link", { hub: state.hub, since: state.since, sourcing: state.sourcing, buffer: state.buffer, hubLag: state.hubLag }),
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
    const levels = levelControl(opts.logger);
    const seqs = await SeqStore.open(opts.config.state, levels.logger.child({ part: "seq" }));
    const d = new Daemon(opts, seqs, levels);
    // Bad credentials fail the start; an unreachable leaf does not (it is retried forever).
    const connOpts = await leafConnectionOptions(opts.config);
    d.connecting = d.connectLeaf(connOpts);
    if (opts.config.remoteConfig === false) {
      await d.applyConfig(d.bootstrapConfig());
    } else {
      const handled = await d.bootRemote(d.cacheFile!);
      d.following = d.followRemote(handled);
    }
    d.operations = await Operations.start(d, opts.operations ?? {}, opts.logger);
    d.logger.info(
      { device: d.config.device.id, region: d.config.device.region, sensors: d.runners.size, config: d.applied.source, revision: d.applied.revision },
      "edge-gateway started",
    );
    return d;
  }

  /** The last-known-good cache file (undefined without remote config). */
  private get cacheFile(): string | undefined {
    const rc = this.config.remoteConfig;
    return rc === false ? undefined : (rc.cache ?? join(this.config.state, "config.json"));
  }

  /** The bootstrap file's own settings as a document. */
  private bootstrapConfig(): AppliedConfig {
    const { sensors, outputs, mqtt, log } = this.config;
    return { source: "bootstrap", document: { sensors, outputs, mqtt, log } };
  }

  /** KV revision of the running config; undefined when it is the bootstrap file's. */
  get configRevision(): number | undefined {
    return this.applied.revision;
  }

  /** Where the running config came from. */
  get configSource(): ConfigSource {
    return this.applied.source;
  }

  /** The whole running config (sensors, outputs, mqtt, log). */
  get appliedConfig(): AppliedConfig {
    return this.applied;
  }

  /** The current log level (a document's `log.level` changes it without restarting anything). */
  get logLevel(): string {
    return this.levels.level;
  }

  /**
   * Boot order (DESIGN A6): the leaf mirror if it holds the key (waiting at most
   * `remoteBootWaitMs` for the leaf), else the cache file, else the bootstrap file.
   * Returns the KV revision handled, for the follower not to handle it again.
   */
  private async bootRemote(cacheFile: string): Promise<number | undefined> {
    const waitMs = this.opts.remoteBootWaitMs ?? 2000;
    const timeout = new AbortController();
    const mirrored = await Promise.race([
      this.readMirror().catch((err: unknown) => {
        this.logger.warn({ err: errorMessage(err) }, "cannot read the config mirror on the leaf at boot");
        return undefined;
      }),
      delay(waitMs, timeout.signal).then(() => "timeout" as const),
    ]);
    timeout.abort();
    if (mirrored === "timeout") this.logger.warn({ waitMs }, "config mirror not readable at boot: starting from the cache file or the bootstrap file");
    if (mirrored && mirrored !== "timeout" && mirrored.status === "valid") {
      await this.handleRevision(mirrored);
      return mirrored.revision;
    }
    let base = this.bootstrapConfig();
    if (mirrored === undefined || mirrored === "timeout" || mirrored.status === "invalid") {
      const cached = await readConfigCache(cacheFile);
      if (cached?.ok) base = { source: "cache", revision: cached.revision, document: cached.document, input: cached.input };
      else if (cached) this.logger.error({ reason: cached.reason }, "config cache unusable: ignoring it");
    }
    await this.applyConfig(base);
    if (mirrored && mirrored !== "timeout") {
      // invalid → rejected event, keeps `base`; deleted → drops the cache.
      await this.handleRevision(mirrored);
      return mirrored.revision;
    }
    return base.revision;
  }

  /** The mirror's current revision, once the leaf connection is up. */
  private async readMirror(): Promise<RemoteRevision | undefined> {
    const remote = await this.remoteConfig();
    return remote?.current();
  }

  private async remoteConfig(): Promise<RemoteConfig | undefined> {
    await this.connecting;
    const rc = this.config.remoteConfig;
    if (!this.nc || rc === false) return undefined;
    this.remote ??= new RemoteConfig({
      nc: this.nc,
      deviceId: this.config.device.id,
      bucket: rc.bucket,
      hubDomain: this.config.nats.hubDomain,
      maxDocumentBytes: this.opts.maxDocumentBytes,
      logger: this.logger.child({ part: "remote-config" }),
    });
    return this.remote;
  }

  /** Follows the mirror until the daemon stops; never rejects. */
  private async followRemote(after: number | undefined): Promise<void> {
    try {
      const remote = await this.remoteConfig();
      if (!remote) return;
      for await (const rev of remote.follow(this.root.signal, after)) {
        if (this.root.signal.aborted) return;
        try {
          await this.handleRevision(rev);
        } catch (err) {
          // One bad apply must not end config following: the next revision gets its chance.
          this.logger.error({ err: errorMessage(err), revision: rev.revision }, "applying a remote config revision failed");
        }
      }
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, "config follower stopped");
    }
  }

  /**
   * Re-reads the device's document from the leaf mirror and applies it (the control service's
   * `reload`). Resolves undefined when remote config is off, so the caller re-reads the
   * bootstrap file instead.
   */
  async reload(): Promise<{ status: string; revision?: number; source: ConfigSource; errors?: unknown } | undefined> {
    if (this.config.remoteConfig === false) return undefined;
    const rev = await this.readMirror();
    if (!rev) return { status: "unchanged", revision: this.configRevision, source: this.configSource };
    await this.handleRevision(rev);
    if (rev.status === "invalid") return { status: "rejected", revision: rev.revision, source: this.configSource, errors: rev.problems };
    return { status: "applied", revision: this.configRevision, source: this.configSource };
  }

  /** Applies or rejects one KV revision, keeps the cache, and reports it on `events.config`. */
  private async handleRevision(rev: RemoteRevision): Promise<void> {
    const cacheFile = this.cacheFile;
    if (rev.status === "invalid") {
      this.logger.error({ revision: rev.revision, errors: rev.problems }, "remote config rejected: keeping the running config");
      this.emitEvent("config", { revision: rev.revision, status: "rejected", errors: rev.problems });
      return;
    }
    const applied: AppliedConfig =
      rev.status === "valid" ? { source: "mirror", revision: rev.revision, document: rev.document, input: rev.input } : { ...this.bootstrapConfig() };
    // A `reload` racing the follower could read revision N while N+1 is being applied: never
    // go back to an older revision than the one running.
    const changes = await this.applyConfig(applied, { ifNewerThanRunning: rev.revision });
    if (!changes) return;
    try {
      if (cacheFile && rev.status === "valid") await writeConfigCache(cacheFile, rev.revision, rev.input);
      else if (cacheFile) await removeConfigCache(cacheFile);
    } catch (err) {
      this.logger.error({ err: errorMessage(err), cache: cacheFile }, "cannot write the config cache: the config is applied but will not survive a boot without the leaf");
    }
    const changed = [...changes.started, ...changes.restarted, ...changes.stopped, ...(changes.outputs ? ["outputs"] : []), ...(changes.mqtt ? ["mqtt"] : [])];
    this.logger.info({ revision: rev.revision, source: applied.source, ...changes }, rev.status === "valid" ? "remote config applied" : "remote config deleted: running the bootstrap file's settings");
    this.emitEvent("config", { revision: rev.revision, status: "applied", source: applied.source, changed, ...changes });
  }

  /**
   * Makes the daemon run `applied`: sensors as a difference, the log level without restarting
   * anything, then `onDocument`. Serialised: one config is applied at a time.
   */
  applyConfig(applied: AppliedConfig): Promise<ConfigChanges>;
  applyConfig(applied: AppliedConfig, opts: { ifNewerThanRunning: number }): Promise<ConfigChanges | undefined>;
  applyConfig(applied: AppliedConfig, opts?: { ifNewerThanRunning: number }): Promise<ConfigChanges | undefined> {
    const run = this.applying.then(async () => {
      const running = this.applied.source === "mirror" ? this.applied.revision : undefined;
      if (opts && running !== undefined && opts.ifNewerThanRunning < running) {
        this.logger.info({ revision: opts.ifNewerThanRunning, running }, "skipping an older config revision");
        return undefined;
      }
      const changes: ConfigChanges = await this.applySensors(applied.document.sensors);
      changes.outputs = await this.applyOutputs(applied.document.outputs);
      changes.mqtt = await this.applyMqtt(applied.document.mqtt);
      const level = applied.input && "log" in applied.input ? applied.document.log.level : this.baseLevel;
      if (level !== this.levels.level) {
        this.logger.info({ from: this.levels.level, to: level }, "log level changed");
        this.levels.setLevel(level);
      }
      this.applied = applied;
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
    const logger = this.logger.child({ sensor: sensor.id });
    const runner = new SensorRunner({
      sensor,
      logger,
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
    logger.debug({ driver: sensor.driver }, "sensor started");
  }

  /**
   * Makes the running sensors match `sensors`: unchanged ones keep running (their seq streams
   * uninterrupted), changed ones restart, new ones start, removed ones stop.
   * Returns the ids that changed.
   */
  async applySensors(sensors: SensorConfig[]): Promise<{ started: string[]; restarted: string[]; stopped: string[] }> {
    if (this.root.signal.aborted) return { started: [], restarted: [], stopped: [] };
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
    if (this.outputsConfig !== undefined && JSON.stringify(outputs) === JSON.stringify(this.outputsConfig)) return false;
    if (this.root.signal.aborted) return false;
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

  /**
   * Starts, restarts (when its settings changed) or stops the MQTT ingest. Its readings are
   * published like any sensor's. Returns true when something changed.
   */
  async applyMqtt(mqtt: MqttConfig | null): Promise<boolean> {
    if (this.mqttConfig !== undefined && JSON.stringify(mqtt) === JSON.stringify(this.mqttConfig)) return false;
    this.mqttAbort?.abort();
    await this.mqtt?.close();
    await this.mqttLoop;
    this.mqtt = undefined;
    if (!mqtt || this.root.signal.aborted) {
      this.mqttConfig = mqtt;
      return true;
    }
    const abort = new AbortController();
    const signal = AbortSignal.any([this.root.signal, abort.signal]);
    this.mqttAbort = abort;
    const ingest = createMqttIngest(mqtt, {
      logger: this.logger,
      deviceId: this.config.device.id,
      report: (h) => this.onHealth("mqtt", h),
    });
    this.mqtt = ingest;
    this.mqttConfig = mqtt;
    // The ingest reconnects to the broker by itself; its iterable ends only on abort/close.
    this.mqttLoop = (async () => {
      try {
        for await (const r of ingest.start(signal)) this.publisher.accept(r);
      } catch (err) {
        if (!signal.aborted) this.logger.error({ err: errorMessage(err) }, "mqtt ingest stopped");
      }
    })();
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
    await this.following;
    // A config being applied finishes first (it sees the abort and starts nothing new).
    await this.applying;
    // A driver whose close hangs (a wedged USB adapter) must not hold the flush hostage.
    const driversStopped = await withDeadline(
      Promise.all([...this.runners.values()].map((r) => r.stop())).then(() => true),
      this.driverStopTimeoutMs,
    );
    if (!driversStopped) this.logger.error({ timeoutMs: this.driverStopTimeoutMs }, "shutdown: some drivers did not stop in time; flushing anyway");
    await this.outputs?.close();
    // Readings the MQTT ingest already took from the broker go out before the flush.
    await this.mqtt?.close();
    await this.mqttLoop;
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
