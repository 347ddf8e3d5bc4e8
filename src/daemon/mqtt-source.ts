/**
 * MQTT as a source of readings like any driver: one broker connection (one client id, one
 * persistent session) for the whole `mqtt:` config, and one {@link SensorRunner} per
 * subscription, so MQTT readings get the same `range`, `deadband`, `heartbeat`, per-sensor
 * status rows, metrics and `read` as every other sensor. The ingest module is loaded only when
 * `mqtt:` is configured.
 *
 * Ack after PubAck (issue 18): a QoS 1/2 message is acknowledged to the broker only once the
 * leaf stored its readings (or they were filtered out by `range`/`deadband`, or dropped and
 * counted). Each reading carries its `settle` from the ingest through its channel; the runner
 * hands it to `emit` with the reading (it emits synchronously between two readings), and the
 * publisher's `onStored` calls it. A reading still held when the gateway stops is not
 * acknowledged: the broker delivers its message again in the next session (at least once).
 */
import type { MqttConfig, MqttSubscription } from "../config/schema.js";
import type { StoredCallback } from "../bridge/publisher.js";
import type { MqttIngest, TaggedReading } from "../bridge/mqtt/types.js";
import { redactUrl } from "../bridge/mqtt/url.js";
import type { Driver, DriverHealth, Reading } from "../drivers/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { SensorRunner, type RunnerSpec } from "./sensor-runner.js";
import type { MqttView } from "./view.js";

/** What the runner of one subscription is configured with. */
export interface MqttRunnerSpec extends RunnerSpec {
  driver: "mqtt";
  subscription: MqttSubscription;
  /** Pushed, not polled. */
  interval?: undefined;
}

export interface MqttSourceContext {
  deviceId: string;
  logger: Logger;
  /** Publishes a reading; `onStored` (if given) is told once whether the leaf stored it. */
  emit: (r: Reading, onStored?: StoredCallback) => void;
  onHealth: (sensor: string, h: DriverHealth) => void;
  /** False while the system clock is not synchronised: readings are then `uncertain`. */
  clockSynced?: () => boolean;
  /** The daemon's root signal. */
  signal: AbortSignal;
}

const DEFAULT_HEARTBEAT_MS = 60_000;

/** The readings of one subscription, between the broker connection and its runner. */
class Channel {
  private queue: TaggedReading[] = [];
  private wake?: () => void;
  /** The settle of the reading last yielded, until the runner emits it or passes over it. */
  private current?: (acknowledge: boolean) => void;
  report?: (h: DriverHealth) => void;

  push(t: TaggedReading): void {
    this.queue.push(t);
    this.notify();
  }

  /** `emit` of this channel's runner: the reading goes to the publisher with its settle. */
  emitter(emit: MqttSourceContext["emit"]): (r: Reading) => void {
    return (r) => {
      const settle = this.current;
      this.current = undefined;
      if (!settle) return emit(r);
      emit(r, (res) => settle(res.stored || res.reason !== "closed"));
    };
  }

  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** A driver over this channel: yields what arrives; on abort, yields what is queued, then ends. */
  driver(report: (h: DriverHealth) => void): Driver {
    this.report = report;
    const state = { closed: false };
    const close = async () => {
      state.closed = true;
      this.notify();
    };
    return {
      start: (signal: AbortSignal) => this.iterate(signal, state),
      close,
      [Symbol.asyncDispose]: close,
    };
  }

  private async *iterate(signal: AbortSignal, state: { closed: boolean }): AsyncGenerator<Reading> {
    const onAbort = () => this.notify();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const t = this.queue.shift();
        if (t) {
          this.current = t.settle;
          yield t.reading;
          // The runner asked for the next one without emitting this one (range, deadband):
          // nothing to store, so nothing holds the message back.
          const passed = this.current;
          this.current = undefined;
          passed?.(true);
          continue;
        }
        if (signal.aborted || state.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

export class MqttSource {
  private constructor(
    private readonly config: MqttConfig,
    readonly ingest: MqttIngest,
    readonly runners: SensorRunner<MqttRunnerSpec>[],
    private readonly abort: AbortController,
    private readonly pump: Promise<void>,
  ) {}

  /** Connects (in the background, retried by the ingest) and starts one runner per subscription. */
  static async start(config: MqttConfig, ctx: MqttSourceContext): Promise<MqttSource> {
    const { createMqttIngest } = await import("../bridge/mqtt-ingest.js");
    const channels = config.subscriptions.map(() => new Channel());
    const runners = config.subscriptions.map((sub, i) => {
      const channel = channels[i]!;
      return new SensorRunner<MqttRunnerSpec>({
        sensor: { id: sub.id, type: sub.type, driver: "mqtt", range: sub.range, deadband: sub.deadband, heartbeat: sub.heartbeat ?? DEFAULT_HEARTBEAT_MS, subscription: sub },
        logger: ctx.logger.child({ part: "mqtt", subscription: sub.topic }),
        emit: channel.emitter(ctx.emit),
        onHealth: ctx.onHealth,
        clockSynced: ctx.clockSynced,
        rowPerSensor: true,
        create: (_counters, report) => channel.driver(report),
      });
    });
    const abort = new AbortController();
    const signal = AbortSignal.any([ctx.signal, abort.signal]);
    const ingest = createMqttIngest(config, {
      logger: ctx.logger,
      deviceId: ctx.deviceId,
      counters: runners.map((r) => r.state.counters),
      // The broker connection's health is every subscription's health.
      report: (h) => {
        for (const c of channels) c.report?.(h);
        if (channels.length === 0) ctx.onHealth("mqtt", h);
      },
    });
    for (const r of runners) r.start(signal);
    // The ingest reconnects by itself; its iterable ends only on abort/close.
    const pump = (async () => {
      try {
        for await (const t of ingest.startTagged(signal)) {
          const ch = channels[t.subscription];
          if (ch) ch.push(t);
          else t.settle?.(true); // cannot happen (route yields configured subscriptions only)
        }
      } catch (err) {
        if (!signal.aborted) ctx.logger.error({ err: errorMessage(err) }, "mqtt ingest stopped");
      }
    })();
    return new MqttSource(config, ingest, runners, abort, pump);
  }

  /** Status/metrics view: broker, client id, ingest counters. */
  view(): MqttView {
    return {
      url: redactUrl(this.config.url),
      clientId: this.ingest.clientId,
      counters: this.ingest.counters,
      subscriptions: this.config.subscriptions.map((s) => ({ topic: s.topic, id: s.id })),
    };
  }

  /**
   * Disconnects from the broker; readings it already acknowledged go through their runners
   * to `emit` before this resolves. Safe to call twice.
   */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.ingest.close();
    await this.pump;
    await Promise.all(this.runners.map((r) => r.stop()));
  }
}

