/**
 * The daemon's operations surface, started with it and stopped in its ordered shutdown:
 * the control service on the leaf connection (once connected), `/healthz` + `/metrics` on
 * loopback, and the systemd notify protocol.
 */
import type { Registry } from "prom-client";
import { ControlRequestError, startControlService, type ControlHandlers, type ControlService } from "../bridge/control-service.js";
import { loadBootstrap } from "../config/load.js";
import type { Reading } from "../drivers/types.js";
import { ConfigError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { packageVersion } from "../version.js";
import type { Health, HttpEndpoint } from "./http.js";
import { SystemdSupervisor, type SdNotifier } from "./sd-notify.js";
import { gatewayStatus } from "./status.js";
import type { GatewayControl, GatewayView } from "./view.js";

export interface OperationsOptions {
  /** The bootstrap file, re-read by `reload` when the daemon has no reload of its own. */
  configFile?: string;
  /** Environment for systemd notify (NOTIFY_SOCKET, WATCHDOG_USEC). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Replaces `systemd-notify` (tests). */
  notifier?: SdNotifier;
  /** How long `read` waits for a driver's poll before answering the last reading. Default 5 s. */
  pollTimeoutMs?: number;
  /** Publisher stall (backlog, no PubAck) that stops the watchdog pings. Default 60 s. */
  stallMs?: number;
  /** See `SupervisorOptions.onStall` (the daemon persists its held readings there). */
  onStall?: (stalled: boolean) => Promise<void> | void;
}

/** Why the publisher is not accepting readings for the leaf, or ok. */
export function daemonHealth(daemon: GatewayView): Health {
  const p = daemon.publisher;
  const s = p.stats;
  const queued = s.queued + s.inFlight;
  const extra = { queued, dropped: s.dropped, link: daemon.link.hub };
  if (p.healthy) return { ok: true, ...extra };
  const reason = p.leafConnected
    ? `leaf stream ${daemon.config.buffer.stream} not ready; ${queued} readings queued`
    : `local leaf unreachable; ${queued} readings queued`;
  return { ok: false, reason, ...extra };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** The control endpoints, implemented on a daemon. */
export function controlHandlers(daemon: GatewayView, control: GatewayControl, opts: OperationsOptions, logger: Logger): ControlHandlers {
  return {
    status: () => gatewayStatus(daemon),

    async read(sensor) {
      const runners = daemon.sensors();
      // An entry by its id, or the entry that produced this id (MQTT wildcards, ds18b20 `auto`).
      const runner = runners.find((r) => r.id === sensor) ?? runners.find((r) => r.lastReadingOf(sensor) !== undefined);
      if (!runner) {
        const known = runners.flatMap((r) => r.rows().map((s) => s.id));
        throw new ControlRequestError(404, `unknown sensor ${JSON.stringify(sensor)}: this device has ${known.join(", ") || "no sensors"}`);
      }
      let pollError: string | undefined;
      try {
        const fresh = await withTimeout(runner.poll(), opts.pollTimeoutMs ?? 5000, `polling ${sensor}`);
        const reading = fresh?.find((r: Reading) => r.sensor === sensor) ?? fresh?.[0];
        if (reading) return { sensor, fresh: true, reading, ageMs: Math.max(0, Date.now() - reading.ts) };
      } catch (err) {
        pollError = errorMessage(err);
      }
      const last = runner.lastReadingOf(sensor) ?? (runner.id === sensor ? runner.state.lastReading : undefined);
      if (!last) {
        const health = runner.state.health;
        throw new ControlRequestError(503, `sensor ${sensor} has no reading yet${pollError ? ` (poll failed: ${pollError})` : ""}${health.state === "error" ? `; driver error: ${health.error.message}` : ""}`);
      }
      return { sensor, fresh: false, reading: last, ageMs: Math.max(0, Date.now() - last.ts), ...(pollError ? { pollError } : {}) };
    },

    async output(id, value) {
      const outputs = daemon.outputs;
      const known = outputs?.list() ?? [];
      if (!outputs || !known.some((o) => o.id === id)) {
        throw new ControlRequestError(404, `unknown output ${JSON.stringify(id)}: this device has ${known.map((o) => o.id).join(", ") || "no outputs"}`);
      }
      await outputs.set(id, value);
      const state = outputs.list().find((o) => o.id === id)!;
      logger.info({ output: id, value }, "output set through the control service");
      return state;
    },

    async reload() {
      // Remote config on: re-apply the leaf mirror's document. Off: re-read the bootstrap file.
      const result = await control.reload();
      if (result !== undefined) return result;
      if (!opts.configFile) throw new ControlRequestError(501, "reload is not available: the daemon was started without a config file");
      let cfg;
      try {
        cfg = await loadBootstrap(opts.configFile);
      } catch (err) {
        const errors = err instanceof ConfigError ? err.problems : [{ path: "", message: errorMessage(err) }];
        control.emitEvent("config", { status: "rejected", source: opts.configFile, revision: null, errors });
        throw new ControlRequestError(409, `${opts.configFile} is invalid; the previous config keeps running: ${errorMessage(err)}`, { errors });
      }
      if (cfg.device.id !== daemon.config.device.id) {
        throw new ControlRequestError(409, `${opts.configFile} now names device ${cfg.device.id}: a new device id needs a restart`);
      }
      const { sensors, outputs, mqtt, log } = cfg;
      const changes = await control.applyConfig({ source: "bootstrap", document: { sensors, outputs, mqtt, log }, input: { log } });
      control.emitEvent("config", { status: "applied", source: opts.configFile, revision: null, ...changes });
      return { status: "applied", source: opts.configFile, ...changes };
    },
  };
}

export class Operations implements AsyncDisposable {
  /** The daemon's Prometheus registry; prom-client and the HTTP server load only with `http:` configured. */
  metrics?: Registry;
  readonly supervisor: SystemdSupervisor;
  http?: HttpEndpoint;
  control?: ControlService;
  private controlStarting?: Promise<void>;
  private closed = false;

  private constructor(
    daemon: GatewayView,
    private readonly opts: OperationsOptions,
    private readonly logger: Logger,
  ) {
    this.supervisor = new SystemdSupervisor({
      logger: logger.child({ part: "ops.systemd" }),
      env: opts.env,
      notifier: opts.notifier,
      stallMs: opts.stallMs,
      onStall: opts.onStall,
      state: () => {
        const p = daemon.publisher;
        const s = p.stats;
        return { healthy: p.healthy, leafConnected: p.leafConnected, queued: s.queued, inFlight: s.inFlight, published: s.published, sensors: daemon.sensors().length, hub: daemon.link.hub };
      },
    });
  }

  /**
   * Starts the HTTP endpoint (if configured), arranges for the control service to start when
   * the leaf connection comes up, and tells systemd READY=1. Never rejects for an operational
   * problem (port in use, no systemd-notify): those are logged.
   */
  static async start(daemon: GatewayView, control: GatewayControl, opts: OperationsOptions, rootLogger: Logger): Promise<Operations> {
    // Children of the root logger, each with one `part` (a child of a child would repeat the key).
    const logger = rootLogger.child({ part: "ops" });
    const ops = new Operations(daemon, opts, logger);
    const http = daemon.config.http;
    if (http) {
      const [{ startHttpEndpoint }, { daemonMetrics }] = await Promise.all([import("./http.js"), import("./metrics.js")]);
      ops.metrics = daemonMetrics(daemon);
      ops.http = await startHttpEndpoint({ listen: http.listen, health: () => daemonHealth(daemon), metrics: ops.metrics, logger: rootLogger.child({ part: "ops.http" }) });
    }
    control.onConnected((nc) => {
      if (ops.closed) return;
      const handlers = controlHandlers(daemon, control, opts, rootLogger.child({ part: "ops.control" }));
      ops.controlStarting = startControlService(nc, {
        deviceId: daemon.config.device.id,
        region: daemon.config.device.region,
        version: packageVersion(),
        startedAt: daemon.startedAt,
        handlers,
        logger: rootLogger.child({ part: "ops.control" }),
      }).then(
        (svc) => {
          ops.control = svc;
          if (ops.closed) void svc.stop();
        },
        (err: unknown) => logger.error({ err: errorMessage(err) }, "control service did not start: the device cannot be reached through `edge-gateway status`"),
      );
    });
    await ops.supervisor.ready();
    return ops;
  }

  /** First step of the shutdown: STOPPING=1 to systemd. */
  async stopping(): Promise<void> {
    await this.supervisor.stopping();
  }

  /** Stops the control service and the HTTP endpoint (before the NATS drain). Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await this.supervisor.stopping();
    await this.controlStarting;
    await this.control?.stop();
    await this.http?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
